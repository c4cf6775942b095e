"""The raw archive: every received file, content-addressed by SHA-256, never modified.

Archiving is the first thing intake does, before any parsing, so nothing received can be
lost whatever happens later. The copy is streamed (bounded memory for any size), written to a
temporary name and renamed into place, then made read-only.

Intake archives without an fsync per file (``durable=False``: ~8 ms each, a national day has
tens of thousands) and makes a whole commit batch durable with one :func:`sync_archive` before
its ledger records are committed: a file is committed only once its copy is on disk. A copy a
crash cut short before that sync has the wrong size, and the next intake replaces it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from npr_pipeline.atomic import replace, temp_file

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archived:
    """Where a file's bytes are kept, and whether they were there already."""

    checksum: str
    size: int
    path: Path
    existed: bool

    @property
    def submission_id(self) -> str:
        """Content-addressed id: the same bytes always get the same id."""
        return self.checksum[:16]


def archive_path(archive: Path, checksum: str) -> Path:
    """``archive/ab/cd/abcd…``: two levels keep folders small at national scale (joined in one
    step: each ``/`` of a Path parses and builds a new one, and intake asks this twice a file)."""
    return archive / f"{checksum[:2]}/{checksum[2:4]}/{checksum}"


def archive_file(source: Path, archive: Path, durable: bool = True) -> Archived:
    """Copy ``source`` into the archive (atomically) unless identical bytes are there; without
    ``durable`` the copy is on disk only after the next :func:`sync_archive`.

    A file of less than ``CHUNK`` (every daily file) is read in one call and hashed before
    anything is written, so bytes already archived cost no temporary file; a larger one is
    hashed while it is copied (bounded memory)."""
    with open(source, "rb") as src:
        whole = os.fstat(src.fileno()).st_size < CHUNK
        head = src.read() if whole else src.read(CHUNK)  # read(CHUNK) allocates a whole MiB
        digest = hashlib.sha256(head)
        if whole and (kept := _kept(archive, digest.hexdigest(), len(head))) is not None:
            return kept
        fd, tmp = temp_file(archive, ".incoming-")
        try:
            size = len(head)
            with os.fdopen(fd, "wb") as out:
                out.write(head)
                while not whole and (chunk := src.read(CHUNK)):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                os.fchmod(out.fileno(), 0o444)
                if durable:
                    out.flush()
                    os.fsync(out.fileno())
            checksum = digest.hexdigest()
            if not whole and (kept := _kept(archive, checksum, size)) is not None:
                tmp.unlink(missing_ok=True)  # these bytes are archived already
                return kept
            target = archive_path(archive, checksum)
            replace(tmp, target)  # makes archive/ab/cd/ the first time only
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Archived(checksum, size, target, existed=False)


def _kept(archive: Path, checksum: str, size: int) -> Archived | None:
    """The archived copy of these bytes, if one of their size is there (a copy a crash cut
    short before its sync has another size, and is replaced)."""
    target = archive_path(archive, checksum)
    try:
        found = target.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size != size:
        return None
    return Archived(checksum, size, target, existed=True)


def sync_archive(archive: Path) -> None:
    """Make every copy archived so far durable: one ``syncfs`` of the archive's filesystem
    (``sync`` where the C library has none), instead of an fsync per file."""
    archive.mkdir(parents=True, exist_ok=True)
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:  # pragma: no cover - not glibc
        os.sync()
        return
    fd = os.open(archive, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:  # pragma: no cover - the kernel refused: sync everything
            os.sync()
    finally:
        os.close(fd)
