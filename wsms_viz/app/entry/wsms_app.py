"""The teaching app as ``wsms-app`` serves it: what ``app.py`` is in a checkout (a test
keeps the two the same below this docstring). ``streamlit run`` finds the ``App`` below
and serves it, adding the app's own "No such page" for a path like ``/a/b``
(:mod:`wsms_viz.app.server`); that ``App`` runs this same file for each visitor, and that
run calls :func:`wsms_viz.app.main.main`.
"""

from streamlit.starlette import App

from wsms_viz.app.main import main
from wsms_viz.app.server import lifespan, middleware

if __name__ == "__main__":  # a visitor's run (or AppTest's)
    main()
else:  # imported by the server that `streamlit run` starts
    app = App(__file__, middleware=middleware(), lifespan=lifespan)
