"""Start ``streamlit run app.py`` on a free port and find the Chromium to drive it: what the
browser tests (tests/test_e2e*.py), the class-load benchmark and scripts/screenshots.py
share. Debian's chromium is used (``WSMS_CHROMIUM`` overrides): no browser is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


# What every server started here runs with, whatever config.toml the working directory
# has: no traceback ever reaches a visitor (Streamlit shows its generic "This app has
# encountered an error" notice; the server's log keeps the traceback).
SERVER_FLAGS = ["--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--client.showErrorDetails", "none"]


def chromium_path() -> str:
    path = os.environ.get("WSMS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no chromium on PATH: run scripts/test.sh (it installs Debian's chromium) "
                           "or set WSMS_CHROMIUM")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict | None = None, *extra: str, timeout: float = 120,
                 app_dir: Path = REPO) -> subprocess.Popen:
    """``streamlit run app.py`` on ``port`` (``extra``: more ``--option value`` flags), once healthy.
    ``app_dir``: the checkout to serve (another one for a before/after benchmark)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(Path(app_dir) / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", *SERVER_FLAGS, *extra]
    log = tempfile.TemporaryFile()  # a file, not a pipe: a long run never blocks on a full pipe
    proc = subprocess.Popen(cmd, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    # The health check is under server.baseUrlPath too.
    base = next((v for k, v in zip(extra, extra[1:], strict=False) if k == "--server.baseUrlPath"), "").strip("/")
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{base + '/' if base else ''}_stcore/health",
                                        timeout=1) as r:
                if r.read() == b"ok":
                    return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.kill()
    proc.wait()
    log.seek(0)
    raise RuntimeError(f"streamlit did not start: {log.read().decode(errors='replace')[-2000:]}")


@contextlib.contextmanager
def running_server(env: dict | None = None, *extra: str):
    """The app served for the block; yields its URL, then stops it."""
    port = free_port()
    proc = start_server(port, env, *extra)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Ends the server: politely, then for sure."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
