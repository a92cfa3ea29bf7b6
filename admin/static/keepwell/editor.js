// The ruleset editor's sections (<details>): each open section sends a hidden `_open` input, so
// it is still open after Validate or "Add a tier". Without this script the sections open as the
// page was sent (and a section holding a problem always opens).
document.addEventListener("toggle", function (event) {
  var section = event.target;
  if (!section.matches || !section.matches("details.kw-section")) { return; }
  var input = section.querySelector(':scope > input[name="_open"]');
  if (input) { input.disabled = !section.open; }
}, true);
