// Forms marked data-confirm="question" ask before they are sent (no inline handlers: the
// Content-Security-Policy runs only the admin's own script files).
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) { event.preventDefault(); }
}, true);
