"""What the pages call, in one namespace: ``from wsms_viz.app import ui``.

The app-only code is split by job, and this module only gathers the names the pages use:

* :mod:`.state`: the selection, the caches (models, galleries, zoom inputs, sweeps, the
  zoom animation, analysis results), shared by every session;
* :mod:`.sidebar`: the sidebar and the page opening (what a visitor may pick);
* :mod:`.widgets`: the zoom slider and the animation that follows it, pickers, tables;
* :mod:`.presenter`: ``chart``, the pages' ``st.plotly_chart`` (bigger text in presenter view).

Nothing here runs at import: the thread count is set by the app's entry (``app.py``).
"""

from .links import LINK
from .presenter import chart
from .sidebar import REPO, SOURCES, chosen_root, data_roots, intro, need_image, page, public, sidebar, untrained_notice
from .state import (
    Selection,
    analysis,
    animation,
    animation_token,
    architecture,
    complexity_table,
    current_input,
    gallery,
    load_models,
    model,
    model_costs,
    sweeps,
    zoom_inputs,
)
from .widgets import (
    STAGE_NAMES,
    ZOOM_MAX,
    ZOOM_MIN,
    baseline,
    class_index,
    class_picker,
    fig1_rows,
    pick_model,
    stage_toggles,
    sync_animation,
    top5_columns,
    top5_style,
    zoom_slider,
)

__all__ = [
    "LINK", "REPO", "SOURCES", "STAGE_NAMES", "ZOOM_MAX", "ZOOM_MIN", "Selection", "analysis", "animation",
    "animation_token", "architecture", "baseline", "chart", "chosen_root", "class_index", "class_picker",
    "complexity_table", "current_input", "data_roots", "fig1_rows", "gallery", "intro", "load_models", "model",
    "model_costs", "need_image", "page", "pick_model", "public", "sidebar", "stage_toggles", "sweeps",
    "sync_animation", "top5_columns", "top5_style", "untrained_notice", "zoom_inputs", "zoom_slider",
]
