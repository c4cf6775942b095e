"""Errors the ``npr`` command turns into one line and an exit code instead of a traceback.

``Refused`` is a rule saying no (exit 3). :func:`storage_problem` recognises the errors of the
storage under HOME (a full disk, a read-only file system, missing permissions), whichever layer
raised them (Python, DuckDB, Arrow, SQLite under Dagster), and says what happened and where.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from datetime import datetime
from pathlib import Path


class Refused(Exception):
    """A rule refuses the command (exit 3); the message names the rule and what to do."""


# errno -> (what happened, the strerror texts other layers put into their messages)
_STORAGE = {
    errno.ENOSPC: ("disk full", ("no space left on device",)),
    errno.EDQUOT: ("disk quota exceeded", ("disk quota exceeded",)),
    errno.EROFS: ("read-only file system", ("read-only file system", "readonly database")),
    errno.EACCES: ("permission denied", ("permission denied",)),
    errno.EPERM: ("operation not permitted", ("operation not permitted",)),
}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (Dagster and SQLAlchemy wrap errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _classify(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno in _STORAGE:
        return exc.errno
    text = str(exc).lower()
    for code, (_, texts) in _STORAGE.items():
        if any(t in text for t in texts):
            return code
    return None


def _free_space(path: Path) -> str | None:
    """Free space on the file system that holds ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                free = shutil.disk_usage(candidate).free
            except OSError:
                return None
            return _size(free)
    return None


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"  # pragma: no cover - the loop always returns


def needs_bytes(exc: OSError, size: int) -> None:
    """Record on a write's error at least how many bytes it needed (shown for a full disk)."""
    exc.add_note(f"npr: needed {size} bytes")


def storage_problem(exc: BaseException, home: Path) -> str | None:
    """One line for a storage error anywhere in ``exc``'s chain, or None for anything else."""
    for link in _chain(exc):
        code = _classify(link)
        if code is None:
            continue
        what = _STORAGE[code][0]
        filename = getattr(link, "filename", None)
        where = Path(filename) if filename else home
        line = f"{what}: could not write {where}"
        if code in (errno.ENOSPC, errno.EDQUOT):
            needed = [
                n.removeprefix("npr: needed ").removesuffix(" bytes")
                for n in getattr(link, "__notes__", [])
                if n.startswith("npr: needed ")
            ]
            free = _free_space(where)
            details = [f"needed at least {_size(int(needed[0]))}"] if needed else []
            details += [f"{free} free there"] if free else []
            if details:
                line += f" ({', '.join(details)})"
            line += "; nothing half-written was kept: free space and run the command again"
        elif code == errno.EROFS:
            line += (
                "; this command writes to HOME: run it where HOME is writable "
                "(status, feedback and diff only read it)"
            )
        else:
            line += "; check the owner and mode of HOME and its folders"
        return line
    return None


ERROR_LOG = "npr-errors.log"


def log_error(home: Path, heading: str, trace: str) -> Path | None:
    """Append ``trace`` under ``heading`` to ``HOME/logs/npr-errors.log``, or to the system's
    temporary folder where HOME cannot be written; where it went, None if nowhere.

    The one place a traceback of ours is kept: an operator reads it after a one-line error of
    the command, or after a file ended ``failed`` (its ledger row says only the error's type
    and message)."""
    text = f"--- {datetime.now().isoformat(timespec='seconds')} {heading}\n{trace}"
    for folder in (home / "logs", Path(tempfile.gettempdir())):
        path = folder / ERROR_LOG
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None
