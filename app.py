"""wsms-viz, the teaching app: ``streamlit run app.py`` (from an installed package:
``wsms-app``). The entry and its pages live in the package, ``wsms_viz/app/``.

This file has two roles. ``streamlit run`` finds the ``App`` below and serves it (with
uvicorn), adding the app's own "No such page" for a path like ``/a/b``
(``wsms_viz/app/server.py`` says why); that ``App`` then runs this same file for each
visitor, as AppTest does, and that run calls :func:`main`. The script stays here, beside
no ``pages/`` folder: Streamlit would treat one as its old page list on a first run.
"""

from streamlit.starlette import App

from wsms_viz.app.main import main
from wsms_viz.app.server import lifespan, middleware

if __name__ == "__main__":  # a visitor's run (or AppTest's)
    main()
else:  # imported by the server that `streamlit run` starts
    app = App(__file__, middleware=middleware(), lifespan=lifespan)
