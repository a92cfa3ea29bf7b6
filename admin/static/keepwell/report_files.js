// "Your report files": while a file is being prepared, ask the server where it stands every
// 1.5 s (a JSON list, this site's own) and show its progress, then its Download button. No
// library: the admin's Content-Security-Policy runs only its own script files.
(function () {
  var section = document.getElementById("report-files");
  if (!section) { return; }
  var statusUrl = section.getAttribute("data-status-url");
  var csrf = document.querySelector('input[name="csrf_token"]');

  function pending() {
    return Array.prototype.map.call(section.querySelectorAll("tr[data-file][data-pending='1']"),
      function (tr) { return tr.getAttribute("data-file"); });
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }

  function show(f) {
    var tr = document.getElementById("file-" + f.id);
    if (!tr) { return; }
    tr.setAttribute("data-pending", f.pending ? "1" : "");
    tr.querySelector('[data-key="status-text"]').textContent = f.status_text;
    var bar = tr.querySelector('[data-key="bar"]');
    bar.style.width = f.percent + "%";
    bar.setAttribute("aria-valuenow", String(f.percent));
    tr.querySelector('[data-key="error"]').textContent = f.error || "";
    var actions = tr.querySelector('[data-key="actions"]');
    if (f.pending) { return; }
    actions.textContent = "";
    if (f.download_url) {
      var a = el("a", {"class": "btn btn-sm btn-primary", href: f.download_url, download: ""}, "Download ");
      a.appendChild(el("span", {"class": "sr-only"}, f.title + " "));
      a.appendChild(document.createTextNode(f.format_name));
      actions.appendChild(a);
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(el("small", {"class": "text-muted"}, f.size_text));
    }
    if (f.again_url && csrf) {
      var form = el("form", {method: "post", action: f.again_url, "class": "d-inline"});
      form.appendChild(el("input", {type: "hidden", name: "csrf_token", value: csrf.value}));
      form.appendChild(el("button", {"class": "btn btn-sm btn-outline-secondary", type: "submit"}, "Prepare again"));
      actions.appendChild(form);
    }
  }

  function poll() {
    var ids = pending();
    if (!ids.length) { return; }
    fetch(statusUrl + "?ids=" + encodeURIComponent(ids.join(",")), {credentials: "same-origin",
      headers: {Accept: "application/json"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : {files: []}; })
      .then(function (data) { (data.files || []).forEach(show); })
      .catch(function () { /* the next round tries again */ })
      .then(function () { if (pending().length) { window.setTimeout(poll, 1500); } });
  }

  if (pending().length) { window.setTimeout(poll, 1000); }
})();
