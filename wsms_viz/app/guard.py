"""How much of the server the heavy analyses may take: a few slots for all sessions together.

An attribution with NoiseTunnel on a new centre costs seconds of CPU; three visitors
clicking through them at once took both cores of a small server, and everybody else's
page loads slowed from 1.6 s to 3.7 s (benchmarks/visitor_load.py). So every computation
of :func:`wsms_viz.app.state.analysis` that is not cached yet (attributions, integration,
feature maps, the lesson's) first takes one of :func:`slots` slots, shared by every
session; a session whose turn has not come waits (its page says so) and, after
``WAIT_S``, is told the server is busy instead. A session also holds at most one slot:
Streamlit runs one script of a session at a time, so a second click waits for the first
one's answer rather than adding a job; :func:`session_slot` makes that a rule of its own.

What stays outside: the zoom sweeps every page load needs (small, and what the visitors
who are not clicking wait for) and cached results, which cost nothing.

Nothing here imports Streamlit: the pages' state module calls it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .catalog import positive_int_env

WAIT_S = 60.0  # how long a heavy job waits for a slot before the visitor is told the server is busy


class Busy(Exception):
    """No slot came free within the wait (or this session is already running a heavy job)."""


def slots() -> int:
    """Heavy jobs at once, all sessions together: ``$WSMS_HEAVY_SLOTS`` (a positive
    integer), else half the CPUs (at least 1), so the other half serves page loads."""
    return positive_int_env("WSMS_HEAVY_SLOTS", max(1, (os.cpu_count() or 2) // 2))


class Slots:
    """``n`` slots for heavy jobs, and how many are taken and waited for (for the notice)."""

    def __init__(self, n: int):
        self.n = n
        self._sem = threading.BoundedSemaphore(n)
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0

    @property
    def full(self) -> bool:
        return self.running >= self.n

    @contextmanager
    def take(self, wait_s: float | None = None) -> Iterator[None]:
        """Holds a slot for the block; :class:`Busy` when none comes free within ``wait_s``
        (default :data:`WAIT_S`)."""
        with self._lock:
            self.waiting += 1
        try:
            got = self._sem.acquire(timeout=WAIT_S if wait_s is None else wait_s)
        finally:
            with self._lock:
                self.waiting -= 1
        if not got:
            raise Busy(f"the server is busy with other visitors' analyses ({self.n} at a time); "
                       "try again in a moment")
        with self._lock:
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._sem.release()


_SHARED: Slots | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> Slots:
    """The server's one :class:`Slots` (made on first use, from :func:`slots`)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = Slots(slots())
        return _SHARED


@contextmanager
def session_slot(session: dict) -> Iterator[None]:
    """At most one heavy job per session (``session``: its ``st.session_state``): a second
    one while the first runs is :class:`Busy` at once instead of a second job."""
    with _SHARED_LOCK:
        lock = session.get("_heavy_lock")
        if lock is None:
            lock = session["_heavy_lock"] = threading.Lock()
    if not lock.acquire(blocking=False):
        raise Busy("still working on your previous request: its answer comes first")
    try:
        yield
    finally:
        lock.release()


__all__ = ["WAIT_S", "Busy", "Slots", "session_slot", "shared", "slots"]
