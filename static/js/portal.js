// Page behaviour that would otherwise be inline script or event-handler attributes, which the Content-Security-Policy
// forbids (script-src 'self', no 'unsafe-inline', no eval for htmx either).
"use strict";

document.addEventListener("change", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLInputElement || field instanceof HTMLSelectElement)) return;

  // A "select all" box ticks every box in its table named by its data-select-all.
  const group = field.dataset.selectAll;
  if (group) {
    for (const box of field.closest("table").querySelectorAll(`input[name="${CSS.escape(group)}"]`)) {
      box.checked = field.checked;
    }
    return;
  }

  // Live filter forms refresh while the search box is typed in (their hx-trigger waits for a pause) and at once when
  // any other field changes. Telling the two apart inside hx-trigger would take an evaluated event filter.
  const form = field.form;
  if (form && form.hasAttribute("data-live-filters") && field.name !== "search") {
    form.dispatchEvent(new CustomEvent("filters-changed", { bubbles: true }));
  }
});
