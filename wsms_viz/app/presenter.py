"""Presenter view: the app on a projector (a sidebar toggle, also settable by link).

The toggle's key is ``presenter``; it is bound to the URL (``?presenter=true``), so a
teacher can hand out a link that opens in presenter view.
"""

from __future__ import annotations

import streamlit as st

KEY = "presenter"


def toggle(where=None) -> bool:
    """The sidebar switch; True while presenter view is on."""
    where = where or st.sidebar
    return bool(where.toggle("Presenter view", key=KEY, bind="query-params", persist_state="session",
                             help="For a projector: bigger plot text and image, and on Zoom compare the "
                                  "image, the zoom, each model's top guess and the verdict on one screen."))


def is_on() -> bool:
    """Whether this session is in presenter view (after the sidebar was drawn)."""
    return bool(st.session_state.get(KEY, False))
