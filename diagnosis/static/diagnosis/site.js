// Every page: the theme toggle, clickable list rows, the print button, focus on the first row of a list.
(function () {
  "use strict";
  // Django's JavaScript catalog (/jsi18n/, loaded before this script) translates; should it not have loaded,
  // English as written. Set once here for the page scripts that run after this one (viewer, study, upload).
  window.gettext = window.gettext || ((text) => text);
  window.ngettext = window.ngettext || ((singular, plural, n) => (n === 1 ? singular : plural));
  // interpolate(format, {name: value}, true) fills %(name)s, as Django's catalog does.
  window.interpolate =
    window.interpolate || ((format, values) => format.replace(/%\((\w+)\)s/g, (m, name) => String(values[name])));
  window.pgettext = window.pgettext || ((context, text) => text);
  const { gettext, pgettext } = window;
  // A job's status as a badge names it, on the study and upload pages (the codes stay in the class names).
  const STATUS_WORDS = {
    sending: pgettext("job status", "sending"),
    refused: pgettext("job status", "refused"),
    queued: pgettext("job status", "queued"),
    running: pgettext("job status", "running"),
    done: pgettext("job status", "done"),
    failed: pgettext("job status", "failed"),
    rejected: pgettext("job status", "rejected"),
  };
  window.xrayStatusWord = (status) => STATUS_WORDS[status] || status;
  const root = document.documentElement;
  const toggle = document.getElementById("theme-toggle");
  function current() {
    return root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  }
  function label() {
    if (!toggle) return;
    const dark = current() === "dark";
    toggle.textContent = dark ? gettext("Light theme") : gettext("Dark theme");
    toggle.setAttribute("aria-pressed", String(dark));
  }
  if (toggle) {
    toggle.addEventListener("click", () => {
      root.dataset.theme = current() === "dark" ? "light" : "dark";
      try { localStorage.setItem("theme", root.dataset.theme); } catch (e) { /* not remembered */ }
      label();
    });
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", label);
    label();
  }

  // A row with data-href opens its study on a click anywhere in it (its link stays the keyboard's way in).
  document.querySelectorAll("tr[data-href]").forEach((row) => {
    row.addEventListener("click", (e) => {
      if (e.target.closest("a, button, input, select, label")) return;
      if (window.getSelection && String(window.getSelection())) return;  // selecting text is not a click
      if (e.ctrlKey || e.metaKey) window.open(row.dataset.href, "_blank"); else location.href = row.dataset.href;
    });
  });

  document.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));

  // The worklist: focus goes to the first study's link, where the reviewer starts.
  const first = document.querySelector("[data-autofocus]");
  if (first && !location.hash) first.focus({ preventScroll: true });

  // Lists refresh themselves while a study of theirs is still queued or running.
  const pending = document.querySelector("[data-refresh-while-pending]");
  if (pending && pending.querySelector("[data-pending]")) setTimeout(() => location.reload(), 5000);
})();
