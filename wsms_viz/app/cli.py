"""``wsms-app``: starts the teaching app from an installed package.

It runs ``streamlit run <package>/app/entry/wsms_app.py`` with :data:`SETTINGS` as
command-line flags: the installed package's ``app.py``, an ``st.App`` that adds the app's own
"No such page" for a path like ``/a/b`` (:mod:`wsms_viz.app.server`). A checkout starts the same app with
``streamlit run app.py``, which reads
``.streamlit/config.toml`` instead; that file holds the same settings (a test compares
them), but Streamlit reads it only from the folder it is started in, so an installed
package cannot rely on it.

Checkpoints come from ``--checkpoints``, else ``$WSMS_CHECKPOINTS``, else ``./checkpoints``
in the folder the command is started in; datasets from ``--data``, else ``$WSMS_DATA_ROOTS``
or ``$WSMS_DATA``, else ``../shared/datasets/cifar10-jpeg`` beside that folder
(:mod:`wsms_viz.app.roots`). Every other option goes to Streamlit, e.g.
``wsms-app --server.port 8600 --server.headless true``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# What `streamlit run` is given: the installed package's app.py (wsms_viz/app/entry/__init__.py says
# why it has a folder of its own).
ENTRY = Path(__file__).resolve().parent / "entry" / "wsms_app.py"

# The server's settings, as Streamlit's config options; .streamlit/config.toml says why each.
SETTINGS: dict[str, object] = {
    "server.maxUploadSize": 25,  # megabytes; images.MAX_UPLOAD_MB
    "browser.gatherUsageStats": False,
    "runner.postScriptGC": False,
    "client.showErrorDetails": "none",
    "client.toolbarMode": "viewer",
}


def flags(settings: dict[str, object] = SETTINGS) -> list[str]:
    """``settings`` as ``streamlit run`` flags.

    Example:
        >>> flags({"runner.postScriptGC": False, "server.maxUploadSize": 25})
        ['--runner.postScriptGC=false', '--server.maxUploadSize=25']
    """
    return [f"--{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wsms-app",
        description="Start the wsms-viz teaching app (a Streamlit server). Any option not listed "
                    "here goes to `streamlit run` (see `streamlit run --help`), e.g. --server.port 8600.",
    )
    p.add_argument("--checkpoints", type=Path, metavar="DIR",
                   help="the checkpoints folder (default: $WSMS_CHECKPOINTS, else ./checkpoints)")
    p.add_argument("--data", type=Path, metavar="FOLDER",
                   help="one dataset folder to share (default: $WSMS_DATA_ROOTS or $WSMS_DATA, else "
                        "../shared/datasets/cifar10-jpeg beside the working directory when it is there)")
    return p


def main(argv: list[str] | None = None) -> None:
    args, rest = _parser().parse_known_args(argv)
    if args.checkpoints is not None:
        os.environ["WSMS_CHECKPOINTS"] = str(args.checkpoints.expanduser().resolve())
    if args.data is not None:
        os.environ.pop("WSMS_DATA_ROOTS", None)  # it would win over WSMS_DATA
        os.environ["WSMS_DATA"] = str(args.data.expanduser().resolve())
    from streamlit.web import cli as streamlit_cli

    # Ours first: a flag the user repeats comes later and wins.
    sys.exit(streamlit_cli.main(["run", str(ENTRY), *flags(), *rest], prog_name="wsms-app", standalone_mode=True))


if __name__ == "__main__":
    main()
