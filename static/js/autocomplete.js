// Pickers that find users and identities by typing (inventory/autocomplete.py): a <select data-autocomplete="URL">
// holding only the chosen options becomes a combobox (WAI-ARIA 1.2 pattern: input role=combobox, a listbox popup,
// arrow keys, Enter, Escape) plus the chosen items as removable buttons. The select stays in the form, hidden, and
// is what gets submitted; the server checks every id again.
"use strict";

(() => {
  const DELAY_MS = 200;
  let counter = 0;

  function setUp(select) {
    const multiple = select.multiple;
    const id = `ac-${++counter}`;
    const label = select.id ? document.querySelector(`label[for="${CSS.escape(select.id)}"]`) : null;

    const box = document.createElement("div");
    box.className = "autocomplete";
    const chosen = document.createElement("ul");
    chosen.className = "autocomplete-chosen";
    chosen.setAttribute("aria-label", "Chosen");
    const input = document.createElement("input");
    input.type = "text";
    input.autocomplete = "off";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", `${id}-list`);
    input.placeholder = "Type to search…";
    const list = document.createElement("ul");
    list.id = `${id}-list`;
    list.className = "autocomplete-list";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    list.setAttribute("aria-label", label ? label.textContent.replace("*", "").trim() : "Results");
    const status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");

    // The label now names the text box; the hidden select keeps its name for the form.
    if (select.id) {
      input.id = select.id;
      select.id = `${select.id}-select`;
    }
    select.hidden = true;
    select.tabIndex = -1;
    select.after(box);
    box.append(chosen, input, list, status);

    let active = -1;
    let timer = null;
    let request = null;

    function renderChosen() {
      chosen.replaceChildren();
      for (const option of select.selectedOptions) {
        const item = document.createElement("li");
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip";
        remove.textContent = `${option.textContent} ×`;
        remove.setAttribute("aria-label", `Remove ${option.textContent}`);
        remove.addEventListener("click", () => {
          option.remove();
          renderChosen();
          changed();
          input.focus();
        });
        item.append(remove);
        chosen.append(item);
      }
    }

    // The hidden select is the form's control: tell listeners (a filter form that reloads on change) it changed.
    function changed() {
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      const options = list.querySelectorAll('[role="option"]');
      if (!options.length) return;
      active = (index + options.length) % options.length;
      options.forEach((option, i) => option.setAttribute("aria-selected", String(i === active)));
      input.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    }

    function choose(result) {
      if (!multiple) {
        for (const option of [...select.options]) option.remove();
      }
      if (![...select.options].some((option) => option.value === String(result.id))) {
        const option = new Option(result.label, String(result.id), true, true);
        select.append(option);
      }
      renderChosen();
      input.value = "";
      close();
      status.textContent = `${result.label} chosen`;
      changed();
    }

    function show(results) {
      list.replaceChildren();
      results.forEach((result, index) => {
        const option = document.createElement("li");
        option.id = `${id}-option-${index}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.textContent = result.label;
        // mousedown, not click: the input's blur would close the list first.
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          choose(result);
        });
        option.result = result;
        list.append(option);
      });
      list.hidden = results.length === 0;
      input.setAttribute("aria-expanded", String(results.length > 0));
      status.textContent = results.length ? `${results.length} found` : "Nothing found";
      active = -1;
    }

    function search() {
      if (request) request.abort();
      request = new AbortController();
      const url = new URL(select.dataset.autocomplete, window.location.href);
      url.searchParams.set("q", input.value.trim());
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", signal: request.signal })
        .then((response) => (response.ok ? response.json() : { results: [] }))
        .then((data) => show(data.results || []))
        .catch((error) => {
          if (error.name !== "AbortError") show([]);
        });
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, DELAY_MS);
    });
    input.addEventListener("focus", () => {
      if (!input.value) search();
    });
    input.addEventListener("blur", close);
    // The search text is not a value of the form; only a choice changes it.
    input.addEventListener("change", (event) => event.stopPropagation());
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (list.hidden) search();
        else highlight(active + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(active - 1);
      } else if (event.key === "Enter") {
        // Enter picks the highlighted option rather than submitting the form.
        const option = list.querySelectorAll('[role="option"]')[active];
        if (!list.hidden && option) {
          event.preventDefault();
          choose(option.result);
        }
      } else if (event.key === "Escape") {
        close();
      } else if (event.key === "Backspace" && !input.value && multiple && select.selectedOptions.length) {
        select.selectedOptions[select.selectedOptions.length - 1].remove();
        renderChosen();
        changed();
      }
    });
    renderChosen();
  }

  function init(root) {
    for (const select of root.querySelectorAll("select[data-autocomplete]")) {
      if (!select.dataset.autocompleteReady) {
        select.dataset.autocompleteReady = "1";
        setUp(select);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("htmx:load", (event) => init(event.target));
})();
