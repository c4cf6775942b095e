"""One writer per HOME: an exclusive lock that a dead process can never keep.

The lock is ``flock`` on ``HOME/locks/<name>.lock``: the kernel releases it when the holder's
last descriptor closes, so a kill -9 frees it at once, with nothing to clean up. The holder
writes who it is (pid, host, command, since) into the file, so a second command can say who
it is waiting for; the text is information only, the kernel's lock is the truth.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from npr_pipeline.home import Home

POLL_SECONDS = 0.2


class HomeLocked(Exception):
    """Another process holds the lock and did not let go within the wait."""

    def __init__(self, name: str, holder: str, waited: float) -> None:
        super().__init__(f"HOME is busy: {name} held by {holder} (waited {waited:.0f} s)")
        self.holder = holder


@contextmanager
def home_lock(
    home: Home, name: str, wait: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the ``name`` lock of HOME; wait up to ``wait`` seconds for it, telling ``on_wait``
    once who holds it, then raise :class:`HomeLocked`."""
    folder = home.root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, name, wait, on_wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder().encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, name: str, wait: float, on_wait: Callable[[str], None] | None) -> None:
    started = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _read_holder(fd)
            waited = time.monotonic() - started
            if waited >= wait:
                raise HomeLocked(name, holder, waited) from None
            if on_wait and not told:
                on_wait(holder)
                told = True
            time.sleep(min(POLL_SECONDS, wait - waited))


def _holder() -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
            "since": datetime.now(UTC).replace(microsecond=0).isoformat(),
        }
    )


def _read_holder(fd: int) -> str:
    try:
        doc = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {doc['pid']} on {doc['host']} ({doc['command']}, since {doc['since']})"
    except (ValueError, KeyError):
        return "another process"
