"""Worker processes that never outlive the command that started them.

A pool worker whose parent is killed (kill -9 of ``npr intake``, not of its process group) is
re-parented and lives on: about 145 MB each, holding inherited file descriptors (the HOME lock
among them), for good. Each worker therefore asks the kernel to kill it when its parent dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def die_with_parent(parent: int) -> None:
    """Kill this process when ``parent`` dies (Linux prctl; elsewhere a polling thread).

    The kernel signal fires on the death of the parent thread that started the worker; the
    pools here are started and drained by one thread, so that is the command itself. A parent
    that died before this call is caught by comparing pids.
    """
    if not _pdeathsig():
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    if os.getppid() != parent:
        os._exit(1)


def _pdeathsig() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)
