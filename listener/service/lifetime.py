"""Processes that must not outlive the process that started them.

A ``listener worker`` killed with SIGKILL must leave nothing behind: its
crawl child asks Linux to kill it with its parent (``PR_SET_PDEATHSIG``), and
the enrichment processes that child forks (which do not inherit that request
across ``fork``) watch their parent and exit when it is gone. Without this, a
killed worker left two idle enrichment processes per crawl for ever.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
#: How often a forked worker looks whether its parent is still there.
WATCH_SECONDS = 1.0


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent died before the request took effect


def exit_when_orphaned(parent: int, every: float = WATCH_SECONDS) -> None:
    """In a forked worker: exit as soon as ``parent`` is no longer this process's parent.

    A thread that polls ``getppid`` rather than ``PR_SET_PDEATHSIG``, because
    the kernel sends that signal when the parent *thread* that forked exits,
    and pools are forked from worker threads that may end before the process.
    """

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(every)
        os._exit(1)

    threading.Thread(target=watch, name="listener-orphan-watch", daemon=True).start()
