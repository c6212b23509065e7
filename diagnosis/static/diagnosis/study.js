// The study page: polls the status until the job is final and swaps in the server's result blocks
// (templates/diagnosis/_result.html and _result_more.html, the one renderer); the reviewer's panel, shown when the
// result comes (no reload); the reviewer's keys and focus; the help dialog.
(function () {
  "use strict";
  // The catalog's functions and the status words (site.js, which runs first, sets them).
  const { gettext, xrayStatusWord: statusWord } = window;
  const box = document.getElementById("study");
  const $ = (id) => document.getElementById(id);
  const typing = window.xrayTyping || (() => false);

  function show(s) {
    $("status-badge").textContent = statusWord(s.status);
    $("status-badge").className = "badge " + s.status;
    if (s.reason) { $("reason").textContent = (s.status === "rejected" ? gettext("Not judged: ") : "") + s.reason; $("reason").hidden = false; }
    if (s.final) { $("progress-box").hidden = true; }
    if (s.result) {
      $("result").outerHTML = s.result_html;  // inside the aria-live region: screen readers hear the result
      $("result-more").outerHTML = s.result_more_html;
      const viewer = (window.xrayViewers || [])[0];
      if (viewer && s.result.label === "PNEUMONIA") viewer.showHeatmap(s.result.heatmap_url);
      showReview(s.result.decisions);
    }
  }

  // A reviewer's panel was rendered hidden, waiting for a result: it is shown now, each choice naming the label
  // it records. Nothing reloads: the viewer keeps its zoom, pan and window/level.
  function showReview(decisions) {
    const panel = $("review");
    if (!panel || !panel.hidden) return;
    Object.entries(decisions).forEach(([value, text]) => {
      const radio = decision(value);
      const label = radio && form.querySelector(`label[for="${radio.id}"]`);
      if (label) label.lastChild.textContent = ` ${text}`;
    });
    panel.hidden = false;
    const agree = decision("agree");
    if (agree && document.activeElement === document.body) agree.focus({ preventScroll: true });
  }

  async function poll(delay) {
    try {
      const res = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (res.ok) {
        const s = await res.json();
        show(s);
        if (s.final) return;
      }
    } catch (e) { /* network blip: keep polling */ }
    setTimeout(() => poll(Math.min(delay * 1.5, 3000)), delay);
  }
  if (box.dataset.final !== "true") poll(250);

  // The reviewer's loop: the decision has focus on arrival; A and D choose, Enter saves (and opens the next),
  // N and P move through the worklist, ? shows the keys.
  const form = $("review-form");
  const decision = (value) => form && form.querySelector(`input[name=decision][value=${value}]`);
  function choose(value) {
    const radio = decision(value);
    if (!radio || $("review").hidden) return;
    radio.checked = true;
    radio.focus();
  }
  // A review that was not saved (a colleague's reading came first, or a bad note): its message is read first, so
  // that Enter cannot save over what it says (on a phone it is below the radiograph, out of sight).
  // A field's own error (a bad note) takes the focus to that field, which names it (aria-describedby).
  const problem = document.querySelector(".side .errorlist");
  if (problem) {
    const field = problem.id && document.querySelector(`[aria-describedby~="${problem.id}"]`);
    const target = field || problem;
    if (!field) target.tabIndex = -1;
    problem.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  }
  if (form) {
    const checked = form.querySelector("input[name=decision]:checked") || decision("agree");
    if (checked && !location.hash && !problem && !$("review").hidden) checked.focus({ preventScroll: true });
    form.querySelector("textarea").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
  }
  const help = $("help");
  $("help-button").addEventListener("click", () => help.showModal());
  function go(id) { const a = $(id); if (a) location.href = a.href; }
  const keys = {
    a: () => choose("agree"), d: () => choose("disagree"),
    n: () => go("next-study"), p: () => go("prev-study"),
    "?": () => (help.open ? help.close() : help.showModal()),
  };
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    const act = keys[e.key.toLowerCase()] || keys[e.key];
    if (act) { e.preventDefault(); act(); }
  });
})();
