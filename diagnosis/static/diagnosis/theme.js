// Loaded in <head>, before the page paints: the reader's chosen theme (light or dark) if they chose one;
// otherwise the CSS follows the system's setting (prefers-color-scheme).
(function () {
  "use strict";
  try {
    const chosen = localStorage.getItem("theme");
    if (chosen === "dark" || chosen === "light") document.documentElement.dataset.theme = chosen;
  } catch (e) { /* storage blocked: follow the system */ }
})();
