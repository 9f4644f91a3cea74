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

// Triage forms (data-triage) show the date, and the reason, only for the actions that take them: a date and a reason
// to suppress, a comment to confirm a change, nothing to acknowledge. Without script every field stays visible.
function showTriageFields(form) {
  const action = form.querySelector('select[name="action"]');
  if (!action) return;
  for (const field of form.querySelectorAll("[data-suppress-only]")) {
    field.hidden = action.value !== "suppress";
  }
  for (const field of form.querySelectorAll("[data-reason]")) {
    field.hidden = action.value === "acknowledge";
  }
}

function setUpTriageForms(root) {
  for (const form of root.querySelectorAll("form[data-triage]")) showTriageFields(form);
}

document.addEventListener("change", (event) => {
  const form = event.target.closest && event.target.closest("form[data-triage]");
  if (form && event.target.name === "action") showTriageFields(form);
});
document.addEventListener("DOMContentLoaded", () => setUpTriageForms(document));
document.addEventListener("htmx:load", (event) => setUpTriageForms(event.target.parentElement || document));

// The main menu on phone widths: a button that folds and unfolds it. The button stays hidden (and the menu open)
// without script; the stylesheet folds the menu only once the header is marked as having the button.
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.querySelector(".menu-toggle");
  const header = toggle && toggle.closest(".topbar");
  if (!header) return;
  toggle.hidden = false;
  header.classList.add("has-menu-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    header.classList.toggle("menu-open", open);
  });
});
