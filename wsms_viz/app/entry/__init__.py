"""What ``wsms-app`` hands to ``streamlit run`` (:mod:`wsms_viz.app.cli`): ``wsms_app.py``,
the installed package's ``app.py``. It sits in a folder of its own: Streamlit puts the
script's folder first on ``sys.path`` (here nothing else is in it to shadow a module) and
treats a ``pages/`` folder beside the script as its old page list on a first run."""
