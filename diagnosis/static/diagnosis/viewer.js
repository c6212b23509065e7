// The radiograph viewer (templates/diagnosis/_viewer.html): zoom, pan, window/level, the heatmap layer,
// full screen and reset, by mouse, touch and keys. Plain JavaScript: no library, nothing inline (strict CSP).
(function () {
  "use strict";
  const { gettext } = window; // Django's JavaScript catalog's, or site.js's English fallback
  const MIN_SCALE = 1, MAX_SCALE = 12;

  function Viewer(root) {
    const stage = root.querySelector("[data-stage]");
    const layer = root.querySelector("[data-layer]");
    const image = root.querySelector("[data-image]");
    const readout = root.querySelector("[data-readout]");
    const ctl = (name) => root.querySelector(`[data-ctl="${name}"]`);
    const s = { scale: 1, tx: 0, ty: 0 };

    const followers = [];
    function heatmap() { return root.querySelector("[data-heatmap-image]"); }

    function clamp() {
      // Keep some of the image in view: never pan it entirely out of the stage.
      const w = stage.clientWidth, h = stage.clientHeight;
      s.tx = Math.min(w * 0.9, Math.max(s.tx, w * 0.1 - w * s.scale));
      s.ty = Math.min(h * 0.9, Math.max(s.ty, h * 0.1 - h * s.scale));
    }

    function apply(quiet) {
      clamp();
      layer.style.transform = `translate(${s.tx}px, ${s.ty}px) scale(${s.scale})`;
      const b = Number(ctl("brightness").value) / 100, c = Number(ctl("contrast").value) / 100;
      image.style.filter = `brightness(${b}) contrast(${c})`;
      const map = heatmap();
      if (map) {
        const on = ctl("heatmap").checked;
        map.hidden = !on;
        map.style.opacity = String(Number(ctl("opacity").value) / 100);
        ctl("opacity").disabled = !on;
      }
      root.dataset.scale = s.scale.toFixed(2);
      readout.textContent = `${Math.round(s.scale * 100)} % · B ${ctl("brightness").value} · C ${ctl("contrast").value}`;
      if (quiet !== true) followers.forEach((f) => f(view()));
    }

    // The view as fractions of the stage (two viewers of a comparison may differ in size), for linking.
    function view() {
      return { scale: s.scale, x: s.tx / (stage.clientWidth || 1), y: s.ty / (stage.clientHeight || 1),
        brightness: ctl("brightness").value, contrast: ctl("contrast").value };
    }
    function follow(v) {
      s.scale = v.scale; s.tx = v.x * stage.clientWidth; s.ty = v.y * stage.clientHeight;
      ctl("brightness").value = v.brightness; ctl("contrast").value = v.contrast;
      apply(true);  // quiet: the other viewer led, it must not be told back
    }

    function zoomAt(factor, cx, cy) {
      const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, s.scale * factor));
      const f = next / s.scale;
      if (cx === undefined) { cx = stage.clientWidth / 2; cy = stage.clientHeight / 2; }
      s.tx = cx - (cx - s.tx) * f;
      s.ty = cy - (cy - s.ty) * f;
      s.scale = next;
      apply();
    }

    function pan(dx, dy) { s.tx += dx; s.ty += dy; apply(); }

    function nudge(name, delta) {
      const input = ctl(name);
      input.value = String(Number(input.value) + delta);
      apply();
    }

    function reset() {
      s.scale = 1; s.tx = 0; s.ty = 0;
      ctl("brightness").value = "100"; ctl("contrast").value = "100";
      if (heatmap()) { ctl("heatmap").checked = true; ctl("opacity").value = "60"; }
      apply();
    }

    function toggleHeatmap() {
      if (!heatmap()) return;
      ctl("heatmap").checked = !ctl("heatmap").checked;
      apply();
    }

    function fullscreen() {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (root.requestFullscreen) root.requestFullscreen().then(() => stage.focus()).catch(() => {});
    }

    // Mouse and touch: one pointer pans (with Shift, or the right button: window/level), two pinch-zoom.
    const pointers = new Map();
    let last = null, pinch = 0;
    stage.addEventListener("pointerdown", (e) => {
      stage.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      last = { x: e.clientX, y: e.clientY, level: e.shiftKey || e.button === 2 };
      pinch = 0;
    });
    stage.addEventListener("pointermove", (e) => {
      if (!pointers.has(e.pointerId)) return;
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y), rect = stage.getBoundingClientRect();
        if (pinch) zoomAt(d / pinch, (a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top);
        pinch = d;
        return;
      }
      if (!last) return;
      const dx = e.clientX - last.x, dy = e.clientY - last.y;
      if (last.level) { nudge("contrast", Math.round(dx)); nudge("brightness", -Math.round(dy)); }
      else pan(dx, dy);
      last = { x: e.clientX, y: e.clientY, level: last.level };
    });
    const release = (e) => { pointers.delete(e.pointerId); last = null; pinch = 0; };
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
    stage.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = stage.getBoundingClientRect();
      zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    stage.addEventListener("dblclick", reset);

    root.querySelectorAll("input[data-ctl]").forEach((input) => input.addEventListener("input", () => apply()));
    root.querySelectorAll("[data-act]").forEach((button) => button.addEventListener("click", () => {
      ({ "zoom-in": () => zoomAt(1.25), "zoom-out": () => zoomAt(1 / 1.25), reset, fullscreen })[button.dataset.act]();
    }));

    // Keys, from the page (study.js leaves these to the viewer that has focus, or the first one).
    const keys = {
      "+": () => zoomAt(1.25), "=": () => zoomAt(1.25), "-": () => zoomAt(1 / 1.25), "_": () => zoomAt(1 / 1.25),
      ArrowLeft: () => pan(40, 0), ArrowRight: () => pan(-40, 0), ArrowUp: () => pan(0, 40), ArrowDown: () => pan(0, -40),
      "[": () => nudge("brightness", -10), "]": () => nudge("brightness", 10),
      "{": () => nudge("contrast", -10), "}": () => nudge("contrast", 10),
      h: toggleHeatmap, H: toggleHeatmap, f: fullscreen, F: fullscreen, 0: reset,
    };
    function key(e) {
      const act = keys[e.key];
      if (!act) return false;
      act();
      return true;
    }

    // A heatmap that arrives later (the result came while the page was open).
    function showHeatmap(url) {
      if (heatmap()) return;
      const map = document.createElement("img");
      map.className = "viewer-heatmap";
      map.dataset.heatmapImage = "";
      map.alt = gettext("Grad-CAM heatmap over the radiograph");
      map.src = url;
      layer.appendChild(map);
      root.querySelector(".heatmap-tools").hidden = false;
      root.dataset.heatmap = "shown";
      apply();
    }

    apply();
    window.addEventListener("resize", () => apply(true));
    return { root, stage, key, reset, showHeatmap, view, follow, onChange: (f) => followers.push(f) };
  }

  // Text fields keep their keys; radios, checkboxes and buttons do not type.
  const typing = (el) => el && (el.isContentEditable || ["TEXTAREA", "SELECT"].includes(el.tagName) ||
    (el.tagName === "INPUT" && !["radio", "checkbox", "button", "submit", "range"].includes(el.type)));
  window.xrayTyping = typing;
  const viewers = [...document.querySelectorAll(".viewer")].map(Viewer);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target) || !viewers.length) return;
    if (e.key.startsWith("Arrow") && e.target.tagName === "INPUT") return;  // a radio or a slider moves
    const v = viewers.find((x) => x.root.contains(document.activeElement)) || viewers[0];
    if (v.key(e)) e.preventDefault();
  });
  window.xrayViewers = viewers;

  // A comparison's "Link viewers": each change of one viewer's zoom, pan or window/level is the other's too.
  const link = document.getElementById("link-viewers");
  if (link && viewers.length === 2) {
    viewers.forEach((v, i) => v.onChange((state) => { if (link.checked) viewers[1 - i].follow(state); }));
    link.addEventListener("change", () => { if (link.checked) viewers[1].follow(viewers[0].view()); });
  }
})();
