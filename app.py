"""wsms-viz, the teaching app: ``streamlit run app.py`` (from an installed package:
``wsms-app``). The entry and its pages live in the package, ``wsms_viz/app/``.

``streamlit run`` sees the ``App`` below and serves it: each visitor runs
``wsms_viz/app/main.py``; ``wsms_viz/app/server.py`` says what the server adds (a "No such
page" for ``/a/b``). (AppTest runs ``wsms_viz/app/main.py`` itself.)"""

from streamlit.starlette import App

from wsms_viz.app.server import MAIN, lifespan, middleware

app = App(MAIN, middleware=middleware(), lifespan=lifespan)
