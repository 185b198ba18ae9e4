"""Questions asked of one model: its stages, receptive fields, attributions, integration
layer, feature maps and architecture. Each module computes numbers and arrays (no
plotting of pages, no Streamlit); it may import the layer below (``wsms_viz.models``,
``wsms_viz.zoom``, ``wsms_viz.data``, ``wsms_viz.checkpoint``) and other ``analysis``
modules, never ``wsms_viz.evaluation``, ``wsms_viz.app`` or ``streamlit``.
"""
