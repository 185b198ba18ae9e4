"""wsms-viz, the teaching app: ``streamlit run app.py`` (from an installed package:
``wsms-app``). The entry and its pages live in the package, ``wsms_viz/app/``."""

from wsms_viz.app.main import main

main()
