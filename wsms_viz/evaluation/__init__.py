"""The numbers for the checkpoint cards and the docs: accuracy against zoom
(``metrics``), the evaluator that writes them into each card (``evaluate``), the docs'
tables (``report``) and parameter / multiplication counts (``complexity``, with the
shipped ``complexity_table.json``). It may import the layer below (``wsms_viz.models``,
``wsms_viz.zoom``, ``wsms_viz.data``, ``wsms_viz.checkpoint``, ``wsms_viz.train``) and
other ``evaluation`` modules, never ``wsms_viz.app`` or ``streamlit``.
"""
