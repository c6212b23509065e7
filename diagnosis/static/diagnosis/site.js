// Every page: the theme toggle, clickable list rows, the print button, focus on the first row of a list.
(function () {
  "use strict";
  // Django's JavaScript catalog (/jsi18n/, loaded before this script) translates; without it, English as written.
  const gettext = window.gettext || ((text) => text);
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
