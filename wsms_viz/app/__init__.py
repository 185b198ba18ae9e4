"""What only the Streamlit app (``app.py``, ``main.py`` and ``pages/``) needs: the model catalog,
images and uploads, the zoom predictor, the figures and the page helpers (``ui``, the
one module in the package that imports ``streamlit``). It sits on top and may import
every other part of ``wsms_viz``; nothing outside ``app/`` and ``app.py``
imports it or ``streamlit``.
"""
