"""wsms-viz: placeholder front page until the teaching app lands (issue 4)."""

import streamlit as st

from wsms_viz.complexity import count_params
from wsms_viz.models import describe_model, list_models

st.set_page_config(page_title="wsms-viz", layout="wide")
st.title("wsms-viz: WSMS-Net, weight-shared multi-stage CNNs")
st.write("Every model the registry knows, with its size at the CIFAR-10 defaults.")
st.table([
    {"model": n, "parameters": f"{count_params(n) / 1e6:.3f}M", "what": describe_model(n)}
    for n in list_models()
])
