"""What ``wsms-app`` serves (``streamlit run`` on this file, :mod:`wsms_viz.app.cli`): the
same ``App`` as the checkout's ``app.py``; ``server.py`` says why it is one."""

from streamlit.starlette import App

from wsms_viz.app.server import MAIN, lifespan, middleware

app = App(MAIN, middleware=middleware(), lifespan=lifespan)
