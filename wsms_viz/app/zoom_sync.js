// Moves the zoom animation to the Streamlit zoom slider's value, in the browser.
//
// Re-sending the 26-frame figure on every slider step would cost the browser ~250 ms of
// re-rendering; this keeps the figure's spec unchanged (so Streamlit leaves it alone) and
// asks Plotly to show frame __ZOOM__, as if its own slider had been dragged there. The
// figure carries a token in layout.meta; the script waits for the figure with that token,
// so after a new image, class or lesion it acts on the new figure once it is drawn, not
// the old one. It also installs, once per browser tab, an observer on the Streamlit zoom
// slider's value (aria-valuetext, which react-aria updates while the thumb moves): the
// animation then follows the hand during the drag and is already there on release,
// without waiting for the server. Animations never queue up: while one is being drawn,
// only the latest requested frame is kept.
(() => {
  const frame = "__ZOOM__", token = "__TOKEN__";  // filled in by widgets.sync_animation
  const z = window.__wsmsZoom || (window.__wsmsZoom = {token: null, busy: false, next: null});
  z.token = token;
  const figure = () => [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.layout && g.layout.meta === z.token);
  const show = (f) => {
    const gd = figure();
    if (!gd || !window.Plotly) return false;
    if (z.busy) { z.next = f; return true; }
    const s = gd.layout.sliders[0];
    if (s.steps[s.active] && s.steps[s.active].label === f) return true;
    z.busy = true;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true; z.busy = false;
      const n = z.next; z.next = null; if (n) show(n);
    };
    setTimeout(done, 1000);  // a figure removed mid-animation never settles the promise
    // An animation interrupted by another one rejects: nothing to report.
    window.Plotly.animate(gd, [f], {mode: "immediate", frame: {duration: 0, redraw: true},
                                    transition: {duration: 0}}).then(done, done);
    return true;
  };
  if (!z.observer) {
    z.observer = new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target;
        if (el.type === "range" && el.getAttribute("aria-label") === "Zoom" && el.closest('[data-testid="stMain"]')) {
          const v = (el.getAttribute("aria-valuetext") || "").replace(/x$/, "");
          if (/^\d\.\d$/.test(v)) show(v);
        }
      }
    });
    z.observer.observe(document.body, {subtree: true, attributes: true, attributeFilter: ["aria-valuetext"]});
  }
  let tries = 0;
  const go = () => { if (!show(frame) && tries++ < 400) setTimeout(go, 25); };
  go();
})();
