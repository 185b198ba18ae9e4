import sys
from pathlib import Path

import pytest
import torch

# scripts/appserver.py (start the app, find Chromium) serves the browser tests too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Debian's, scripts/appserver.py) for a module's browser tests."""
    from appserver import CHROMIUM_ARGS, chromium_path
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(autouse=True)
def one_thread():
    """Every test runs on one CPU thread and leaves torch's global settings as it found them.

    On a 2-core machine shared with other jobs, two torch threads wait on each other (up
    to 30-50x slower for these tiny models); one thread changes no result. The trainer
    sets threads and deterministic mode for its own process, which a test is not, so
    both are put back after each test.
    """
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)
