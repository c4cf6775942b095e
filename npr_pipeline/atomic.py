"""Atomic file writes: write to a temporary file beside the target, fsync, rename.

A reader never sees half a file, and a run killed mid-write leaves the old file or none.
``durable=False`` skips the fsync for files that can be rebuilt from the archive (reports,
quality results): still atomic, but an fsync costs ~8 ms here and intake writes thousands.
``scratch`` puts the temporary file in another folder of the same filesystem instead of beside
the target: a folder that holds millions of files (the outbox) is then never walked to find what
a killed run left, only its small scratch folder.

Folders are made only when a write finds them missing: a ``mkdir`` before every write cost
intake two system calls per file written (tens of thousands on a national day) for folders
that almost always exist.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# read and write: the archive hashes its temporary copy through a mapping of it
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_SERIAL = itertools.count()  # temporary names of this process (its pid in the name)


@contextmanager
def _temporary(target: Path, scratch: Path | None) -> Iterator[tuple[int, Path]]:
    """A new temporary file for ``target`` in ``scratch`` (default: the target's folder): its
    open descriptor (the caller's to close) and path. Renamed over ``target`` when the block
    succeeds; removed when the block or the rename fails (after the rename there is nothing to
    remove: trying anyway cost every write a failing system call and an exception)."""
    fd, tmp_path = temp_file(scratch or target.parent, f".{target.name}.", ".tmp")
    try:
        yield fd, tmp_path
        replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(target: Path, durable: bool = True, scratch: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``scratch`` (default: the target's folder); renamed over
    ``target`` on success."""
    with _temporary(target, scratch) as (fd, tmp_path):
        os.close(fd)
        yield tmp_path
        if durable:
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())


def temp_file(folder: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """A new temporary file in ``folder`` (made, with its parents, if missing), owner-only:
    its open descriptor and path.

    Named ``prefix + pid.n + suffix`` and created with ``O_EXCL``: unique as ``mkstemp``'s
    random names are (no two live processes share a pid; a name a killed process left is
    skipped), at about half its CPU (``mkstemp`` draws a random name and resolves the folder
    each time; intake makes ~4 temporary files per daily file).
    """
    pid = os.getpid()
    while True:
        path = folder / f"{prefix}{pid}.{next(_SERIAL)}{suffix}"  # parses the name only
        try:
            return os.open(path, _CREATE, 0o600), path
        except FileExistsError:
            continue  # a killed process's leftover under a reused pid: the next number
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)


def replace(source: Path, target: Path) -> None:
    """``os.replace``, making the target's folder (with its parents) if it is missing."""
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if not source.exists():
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


@contextmanager
def atomic_open(
    target: Path,
    mode: str = "w",
    durable: bool = True,
    scratch: Path | None = None,
    **kwargs: object,
) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``target`` only if the block succeeds.

    The file is written through the descriptor that created it: closing it and opening the
    path again cost two more system calls per write."""
    with (
        _temporary(target, scratch) as (fd, _),
        os.fdopen(fd, mode, **kwargs) as fh,  # type: ignore[call-overload]
    ):
        yield fh
        if durable:
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(
    target: Path, data: bytes, durable: bool = True, scratch: Path | None = None
) -> None:
    """Atomically write ``data`` to ``target``."""
    with atomic_open(target, "wb", durable=durable, scratch=scratch) as fh:
        fh.write(data)


def write_text(target: Path, text: str, durable: bool = True, scratch: Path | None = None) -> None:
    """Atomically write UTF-8 ``text`` to ``target``."""
    with atomic_open(target, "w", durable=durable, scratch=scratch, encoding="utf-8") as fh:
        fh.write(text)
