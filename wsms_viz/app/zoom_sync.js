// Moves the zoom animation to the Streamlit zoom slider's value, in the browser.
//
// Re-sending the 26-frame figure on every slider step would cost the browser ~250 ms of
// re-rendering; this keeps the figure's spec unchanged (so Streamlit leaves it alone) and
// shows frame __ZOOM__ of it. The figure carries a token in layout.meta; the script waits
// for the figure with that token, so after a new image, class or lesion it acts on the
// new figure once it is drawn, not the old one. It also installs, once per browser tab, an
// observer on the Streamlit zoom slider's value (aria-valuetext, which react-aria updates
// while the thumb moves): the animation then follows the hand during the drag and is
// already there on release, without waiting for the server.
//
// What a frame costs the browser is the point here: a class of students' browsers drag
// this slider at once. Plotly.animate with a redraw re-renders the whole figure (the
// photo, both images, four subplots and Plotly's own slider: 110-190 ms of CPU a frame),
// and the thumb passes several steps per drag. Every part a frame changes can be
// animated without one (zoom_figures.py: the bars and markers are traces, the crop box a
// shape, the network's input a layout image), so frames are shown with redraw: false;
// and while the thumb moves, one every GAP ms at most, the latest one always last.
// Even so a frame costs ~60 ms, and most of the time the figure is below the first screen
// (the image, the slider and the top guesses fill it): a frame is then kept, not drawn,
// until the figure scrolls into view (an IntersectionObserver), and only the latest.
(() => {
  const frame = "__ZOOM__", token = "__TOKEN__";  // filled in by widgets.sync_animation
  const GAP = 150;  // ms between two frames while the thumb moves
  const z = window.__wsmsZoom || (window.__wsmsZoom = {token: null, busy: false, next: null, timer: null,
                                                        watched: null, visible: null, io: null});
  z.token = token;
  if (!document.getElementById("wsms-pixelated")) {  // the network's 32x32 input: square pixels, not a blur
    const style = document.createElement("style");
    style.id = "wsms-pixelated";
    style.textContent = '.js-plotly-plot image[href^="data:image/png"] { image-rendering: pixelated; }';
    document.head.appendChild(style);
  }
  const figure = () => [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.layout && g.layout.meta === z.token);
  const shown = (gd) => { const s = gd.layout.sliders[0]; return s.steps[s.active] && s.steps[s.active].label; };
  const draw = (gd, f) => window.Plotly.animate(
    gd, [f], {mode: "immediate", frame: {duration: 0, redraw: false}, transition: {duration: 0}});
  // Whether the figure is on screen (null: not known yet, so drawn). A new figure (a new
  // image, class or lesion) is watched instead of the old one.
  const watch = (gd) => {
    if (!window.IntersectionObserver || z.watched === gd) return;
    if (!z.io) z.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.target !== z.watched) continue;
        z.visible = e.isIntersecting;
        if (z.visible) pump();
      }
    }, {rootMargin: "100px"});
    if (z.watched) z.io.unobserve(z.watched);
    z.watched = gd; z.visible = null;
    z.io.observe(gd);
  };
  const pump = () => {
    if (z.busy || z.next === null) return;
    const gd = figure();
    if (!gd || !window.Plotly) return;
    watch(gd);
    if (z.visible === false) return;  // drawn when it scrolls into view
    const f = z.next;
    z.next = null;
    if (shown(gd) === f) return;
    z.busy = true;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true; z.busy = false;
      pump();
    };
    setTimeout(done, 1000);  // a figure removed mid-animation never settles the promise
    // An animation interrupted by another one rejects: nothing to report.
    draw(gd, f).then(done, done);
  };
  // ``later``: a step the thumb passes while dragged, drawn GAP ms on (with whatever
  // step is latest then), so a quick flick costs one frame and a slow drag one per GAP.
  const show = (f, later) => {
    if (!figure() || !window.Plotly) return false;
    z.next = f;
    if (!later) { clearTimeout(z.timer); z.timer = null; pump(); }
    else if (!z.timer) z.timer = setTimeout(() => { z.timer = null; pump(); }, GAP);
    return true;
  };
  if (!z.observer) {
    z.observer = new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target;
        if (el.type === "range" && el.getAttribute("aria-label") === "Zoom" && el.closest('[data-testid="stMain"]')) {
          const v = (el.getAttribute("aria-valuetext") || "").replace(/x$/, "");
          if (/^\d\.\d$/.test(v)) show(v, true);
        }
      }
    });
    z.observer.observe(document.body, {subtree: true, attributes: true, attributeFilter: ["aria-valuetext"]});
  }
  let tries = 0;
  const go = () => { if (!show(frame) && tries++ < 400) setTimeout(go, 25); };
  go();
})();
