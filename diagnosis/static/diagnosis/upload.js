// The upload page: the age warning as you type; drag and drop and the list of chosen files; then each file
// sent on its own request (XHR, for its progress), its fate named (a study, or the reason it was refused),
// and the studies' statuses and thumbnails kept live until each is final. Without this script the form
// posts every file at once and the page lists each file's fate.
(function () {
  "use strict";
  // The catalog's functions and the status words (site.js, which runs first, sets them).
  const { gettext, ngettext, interpolate, xrayStatusWord: statusWord } = window;
  const form = document.getElementById("upload-form");
  const input = form.querySelector("input[type=file]");
  const list = document.getElementById("file-list");
  const zone = document.getElementById("dropzone");
  const button = document.getElementById("analyse");
  const summary = document.getElementById("upload-summary");

  const age = document.getElementById("id_age_years");
  const warn = document.getElementById("age-warning");
  function checkAge() {
    const v = age.value === "" ? null : Number(age.value);
    warn.hidden = v === null || (v >= Number(form.dataset.minAge) && v <= Number(form.dataset.maxAge));
  }
  age.addEventListener("input", checkAge);
  checkAge();

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  let rows = [];
  function showChosen() {
    list.replaceChildren();
    rows = [...input.files].map((file) => {
      const li = el("li", "chosen");
      const thumb = el("span", "thumb");
      const name = el("span", "name", `${file.name} · ${size(file.size)}`);
      const badge = el("span", "badge", "chosen");
      const bar = el("progress");
      bar.max = 100; bar.value = 0; bar.hidden = true;
      bar.setAttribute("aria-label", interpolate(gettext("%(name)s sent"), { name: file.name }, true));
      li.append(thumb, name, badge, bar);
      list.append(li);
      return { file, li, thumb, name, badge, bar };
    });
    summary.textContent = rows.length
      ? interpolate(ngettext("%(count)s file chosen", "%(count)s files chosen", rows.length), { count: rows.length }, true)
      : "";
    batch = [];  // the last batch's view is gone
  }
  input.addEventListener("change", showChosen);

  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    const all = new DataTransfer();
    [...input.files, ...e.dataTransfer.files].forEach((f) => all.items.add(f));
    input.files = all.files;
    showChosen();
  });

  function setBadge(row, status, text) {
    row.badge.className = `badge ${status}`;
    row.badge.textContent = text || statusWord(status);
  }

  // The details as they were when Analyse was pressed: every file of the batch gets those, whatever is typed meanwhile.
  function send(row, details) {
    return new Promise((resolve) => {
      const data = new FormData();
      details.forEach((value, name) => { if (name !== input.name) data.append(name, value); });
      data.append(input.name, row.file, row.file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      row.bar.hidden = false;
      setBadge(row, "running", statusWord("sending"));
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        row.bar.value = (100 * e.loaded) / e.total;
        row.li.dataset.sent = String(Math.round(row.bar.value));  // how much of the file has gone
      });
      xhr.addEventListener("load", () => {
        row.bar.value = 100;
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        if (body && body.details) sentDetails = body.details;
        if (body && body.studies && body.studies.length) { sent(row, body.studies[0]); resolve(true); return; }
        const error = body && body.errors && body.errors[0];
        refused(row, error ? error.message : interpolate(gettext("The server answered %(status)s."), { status: xhr.status }, true));
        resolve(false);
      });
      xhr.addEventListener("error", () => { refused(row, gettext("The upload did not reach the server (network error).")); resolve(false); });
      xhr.send(data);
    });
  }

  function refused(row, message) {
    row.li.className = "refused";
    row.bar.hidden = true;
    setBadge(row, "rejected", statusWord("refused"));
    row.li.append(el("span", "error", message));
  }

  function sent(row, study) {
    row.li.className = "sent";
    row.li.dataset.study = study.id;
    row.bar.hidden = true;
    const img = el("img");
    img.alt = "";
    img.src = study.thumbnail_url;
    row.thumb.replaceWith(img);
    const link = el("a", "name", row.name.textContent);
    link.href = study.url;
    row.name.replaceWith(link);
    setBadge(row, "queued");
    row.li.append(el("span", "details-got", study.details));  // what this study got, in the server's words
    watch(row, study.status_url, 500);
  }

  // "Normal · P(pneumonia) 66 % · borderline": the percentage is the probability of pneumonia, whatever the call.
  function showResult(row, r) {
    setBadge(row, r.label);
    const p = el("abbr", null, "P(pneumonia)");
    p.title = gettext("probability of pneumonia");
    row.badge.replaceChildren(`${r.label_display} · `, p, ` ${r.probability_text}${r.borderline ? ` · ${gettext("borderline")}` : ""}`);
    if (r.borderline) row.badge.title = r.relation_text;  // "3.6 points below the decision threshold 50 %", from the server
  }

  // The live batch view: each study's status until it is final, with its result once there is one.
  function watch(row, url, delay) {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((res) => (res.ok ? res.json() : null))
      .then((s) => {
        if (s) {
          if (s.result) showResult(row, s.result); else setBadge(row, s.status);
          if (s.reason && !row.li.querySelector(".error")) row.li.append(el("span", "error", s.reason));
          row.final = s.final;
          counts();
          if (s.final) return;
        }
        setTimeout(() => watch(row, url, Math.min(delay * 1.5, 4000)), delay);
      })
      .catch(() => setTimeout(() => watch(row, url, 4000), 4000));
  }

  // One true sentence about the batch as it goes: sending, then accepted and finished.
  let batch = [], sending = false, sentDetails = "";
  function counts() {
    if (!batch.length) return;  // files chosen since: the last batch's late results no longer speak
    const of = (cls) => batch.filter((r) => r.li.classList.contains(cls)).length;
    const accepted = of("sent"), refused = of("refused"), done = batch.filter((r) => r.final).length;
    const say = (format, values) => interpolate(format, values, true);
    if (sending) { summary.textContent = say(gettext("Sending: %(sent)s of %(total)s sent"), { sent: accepted + refused, total: batch.length }); return; }
    const head = refused ? say(gettext("%(accepted)s accepted, %(refused)s refused"), { accepted, refused }) : say(gettext("%(accepted)s accepted"), { accepted });
    if (!accepted) summary.textContent = say(gettext("None accepted, %(refused)s refused"), { refused });
    else if (done === accepted) summary.textContent = say(gettext("%(head)s: all %(accepted)s finished"), { head, accepted });
    else summary.textContent = say(gettext("%(head)s: %(done)s of %(accepted)s finished, %(waiting)s waiting for the model"), { head, done, accepted, waiting: accepted - done });
  }

  // After a batch the details go, unless the user ticked "keep": the next file is most often the next patient's.
  const keep = document.getElementById("id_keep_details");
  const fate = document.getElementById("details-fate");
  const detailFields = [...form.querySelectorAll("fieldset input:not([type=checkbox]), fieldset select, fieldset textarea")];
  function settleDetails(described) {
    if (keep && keep.checked) {
      fate.textContent = interpolate(gettext("Kept for the next upload: %(details)s."), { details: described }, true);
    } else {
      detailFields.forEach((f) => { f.value = ""; });
      checkAge();
      fate.textContent = gettext("The study details were cleared for the next patient.");
    }
    fate.hidden = false;
  }

  form.addEventListener("submit", async (e) => {
    if (!rows.length) return;  // nothing chosen: the server's form explains
    e.preventDefault();
    const details = new FormData(form);
    sentDetails = "";
    batch = rows;
    rows = [];  // a second Analyse sends what is chosen next, never this batch again
    sending = true;
    button.disabled = true;
    form.querySelectorAll("input, select, textarea").forEach((i) => (i.disabled = true));
    fate.hidden = true;
    counts();
    // Two at a time: each file's progress is its own, and one refused file never takes the others with it.
    const queue = [...batch];
    const worker = async () => { while (queue.length) { await send(queue.shift(), details); counts(); } };
    await Promise.all([worker(), worker()]);
    sending = false;
    form.querySelectorAll("input, select, textarea").forEach((i) => (i.disabled = false));
    settleDetails(sentDetails || gettext("the details in the form"));
    // One file, accepted: its study page is where the clinician goes next (as without the script).
    const only = batch.length === 1 && batch[0].li.querySelector("a.name");
    if (only) { location.href = only.href; return; }
    counts();
    button.disabled = false;
    input.value = "";
    document.getElementById("to-history").hidden = false;
  });
})();
