// The enrolment's customer picker, as you type: the "Find" button does the same without
// JavaScript (the page comes back with the matches in the list).
(function () {
  var find = document.getElementById("customer-find");
  var list = document.getElementById("customer");
  if (!find || !list) return;
  var timer = null;
  find.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(find.dataset.lookup + "?q=" + encodeURIComponent(find.value), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (rows) {
          var keep = list.value;
          while (list.options.length > 1) list.remove(1);
          rows.forEach(function (c) { list.add(new Option(c.label, c.id, false, c.id === keep)); });
          if (rows.length === 1) list.value = rows[0].id;
        });
    }, 200);
  });
})();
