"""The raw archive: every received file, content-addressed by SHA-256, never modified.

Archiving is the first thing intake does, before any parsing, so nothing received can be
lost whatever happens later. The copy is made by the kernel (bounded memory for any size) into
a temporary name, hashed there, made read-only and renamed into place.

Intake archives without an fsync per file (``durable=False``: ~8 ms each, a national day has
tens of thousands) and makes a whole commit batch durable with one :func:`sync_archive` before
its ledger records are committed: a file is committed only once its copy is on disk. A copy a
crash cut short before that sync has the wrong size, and the next intake replaces it.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from npr_pipeline.atomic import replace, temp_file

CHUNK = 1 << 20
# copy_file_range's refusals that a plain copy gets past (nothing copied yet).
_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


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

    The bytes are copied by the kernel (:func:`_copy`) into the temporary file, and that file,
    ours alone, is hashed through a mapping of it: the checksum is the copy's own, whatever
    happens to ``source`` meanwhile, and no byte passes through a Python buffer (a read and a
    write of each file before). Bytes already archived cost a temporary file, removed."""
    fd, tmp = temp_file(archive, ".incoming-")
    try:
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            try:
                size = _copy(src, fd)
            finally:
                os.close(src)
            checksum = _digest(fd, size)
            os.fchmod(fd, 0o444)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if (kept := _kept(archive, checksum, size)) is not None:
            tmp.unlink()  # these bytes are archived already
            return kept
        target = archive_path(archive, checksum)
        replace(tmp, target)  # makes archive/ab/cd/ the first time only
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Archived(checksum, size, target, existed=False)


def _copy(source: int, target: int) -> int:
    """Copy ``source`` to its end into ``target`` with ``copy_file_range`` (page cache to page
    cache in the kernel), or through a buffer where the kernel refuses (another filesystem on
    an old kernel, a special file); returns the bytes copied."""
    size = 0
    try:
        while copied := os.copy_file_range(source, target, CHUNK):
            size += copied
    except OSError as exc:
        if size or exc.errno not in _NO_COPY_RANGE:
            raise
        while chunk := os.read(source, CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(target, view) :]
            size += len(chunk)
    return size


def _digest(fd: int, size: int) -> str:
    """The SHA-256 of the file's first ``size`` bytes, hashed through a read-only mapping (the
    page cache's pages, not a copy of them)."""
    if size == 0:  # an empty file cannot be mapped
        return hashlib.sha256(b"").hexdigest()
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as view:
        return hashlib.sha256(view).hexdigest()


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
