// The condition builder (templates/keepwell/_conditions.html): when the event type(s) of a rule
// change, each Field list offers the fields those events carry, and the member's. Without this
// script the lists are refreshed by the next Validate or "Add a condition" (the server draws them).
(function () {
  var holder = document.getElementById("kw-condition-catalog");
  if (!holder) { return; }
  var catalog = JSON.parse(holder.getAttribute("data-catalog"));

  // The data fields every chosen event type carries (a rule on several types can test only
  // those); every type's fields while none is chosen.
  function fieldsFor(events) {
    var names = [], seen = {};
    var chosen = events.filter(function (e) { return catalog.events[e]; });
    (chosen.length ? chosen : Object.keys(catalog.events)).forEach(function (e) {
      catalog.events[e].forEach(function (f) { if (!(f[0] in seen)) { seen[f[0]] = f[1]; names.push(f[0]); } });
    });
    if (chosen.length > 1) {  // carried by every chosen type, with the same kind
      names = names.filter(function (name) {
        return chosen.every(function (e) {
          return catalog.events[e].some(function (f) { return f[0] === name && f[1] === seen[name]; });
        });
      });
    }
    return names;
  }

  function option(value, text, selected) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text; o.selected = !!selected;
    return o;
  }

  function refresh(builder) {
    var events = Array.prototype.filter.call(builder.querySelector("[data-kw-events]").options,
      function (o) { return o.selected; }).map(function (o) { return o.value; });
    var data = fieldsFor(events);
    builder.querySelectorAll("[data-kw-field]").forEach(function (select) {
      var current = select.value;
      select.textContent = "";
      select.appendChild(option("", "— choose a field —", !current));
      var groups = [["Event", data], ["Member", catalog.member]];
      var known = data.concat(catalog.member);
      if (current && known.indexOf(current) < 0) { groups.push(["Other", [current]]); }
      groups.forEach(function (g) {
        if (!g[1].length) { return; }
        var og = document.createElement("optgroup");
        og.label = g[0];
        g[1].forEach(function (name) {
          var title = catalog.fields[name] ? catalog.fields[name][0] : name + " (not in these events)";
          if (g[0] === "Other") { title = name + " (not in these events)"; }
          og.appendChild(option(name, title, name === current));
        });
        select.appendChild(og);
      });
    });
  }

  // The Value box follows the operator and the field: "is one of" takes several values separated
  // by commas (text), a number field's "is at least" a number.
  function retype(row) {
    var field = row.querySelector("[data-kw-field]"), op = row.querySelector("[data-kw-op]");
    var value = row.querySelector("[data-kw-value]");
    if (!field || !op || !value) { return; }
    var kind = catalog.fields[field.value] ? catalog.fields[field.value][1] : "";
    var several = ["in", "not_in", "exists", "absent"].indexOf(op.value) >= 0;
    var numeric = ["money", "integer", "number"].indexOf(kind) >= 0;
    if (value.tagName === "SELECT") {
      if (!several) { return; }
      var box = document.createElement("input");
      ["id", "name", "class", "aria-describedby"].forEach(function (a) {
        if (value.getAttribute(a)) { box.setAttribute(a, value.getAttribute(a)); }
      });
      box.type = "text"; box.value = value.value; box.autocomplete = "off";
      box.setAttribute("data-kw-value", "");
      value.parentNode.replaceChild(box, value);
      return;
    }
    var wanted = (numeric && !several) ? "number" : "text";
    if (value.type !== wanted && (wanted === "text" || value.value === "" || !isNaN(Number(value.value)))) {
      value.type = wanted;
      if (wanted === "number") { value.step = kind === "integer" ? "1" : "any"; }
    }
  }

  document.querySelectorAll("[data-kw-conditions]").forEach(function (builder) {
    var events = builder.querySelector("[data-kw-events]");
    if (events) { events.addEventListener("change", function () { refresh(builder); }); }
    builder.addEventListener("change", function (event) {
      var row = event.target.closest && event.target.closest(".kw-cond");
      if (row && (event.target.hasAttribute("data-kw-op") || event.target.hasAttribute("data-kw-field"))) {
        retype(row);
      }
    });
  });
})();
