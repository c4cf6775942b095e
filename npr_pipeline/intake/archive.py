"""The raw archive: every received file, content-addressed by SHA-256, never modified.

Archiving is the first thing intake does, before any parsing, so nothing received can be
lost whatever happens later. A copy is written unnamed (``atomic.NewFile``: a killed intake
leaves no partial copy behind), made read-only and named by its checksum: a small file is hashed
first (a resend writes nothing), a large one is copied by the kernel (bounded memory for any
size) and hashed there.

Intake archives without an fsync per file (``durable=False``: ~8 ms each, a national day has
tens of thousands) and makes a whole commit batch durable with one :func:`sync_archive` before
its ledger records are committed: a file is committed only once its copy is on disk. A copy a
crash cut short before that sync has the wrong size, and the next intake replaces it.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from npr_pipeline.atomic import NewFile, write_all

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

    A file of less than ``CHUNK`` (every daily file, most monthly ones) is read in one call and
    hashed before anything is written, so bytes already archived (a resend) cost no temporary
    file and no unlink (~2.3 ms of wall each on a disk mounted with ``discard``). A larger file
    is copied by the kernel (:func:`_copy`, bounded memory) and that copy, ours alone, is
    hashed a window at a time: the checksum is the copy's own, whatever happens to
    ``source`` meanwhile."""
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(src).st_size < CHUNK:
            return _archive_small(src, archive, durable)
        return _archive_large(src, archive, durable)
    finally:
        os.close(src)


def _archive_small(src: int, archive: Path, durable: bool) -> Archived:
    """Read, hash, and write only bytes the archive lacks (to their end, should the file have
    grown since it was measured)."""
    data = _read_all(src)
    checksum = hashlib.sha256(data).hexdigest()
    if (kept := _kept(archive, checksum, len(data))) is not None:
        return kept
    with NewFile(archive, ".incoming-") as copy:
        write_all(copy.fd, data)
        return _placed(copy, durable, archive, checksum, len(data))


def _archive_large(src: int, archive: Path, durable: bool) -> Archived:
    """Copy by the kernel, hash the copy, and drop it if these bytes are archived already."""
    with NewFile(archive, ".incoming-") as copy:
        size = _copy(src, copy.fd)
        checksum = _digest(copy.fd, size)
        if (kept := _kept(archive, checksum, size)) is not None:
            return kept  # these bytes are archived already: the copy is dropped
        return _placed(copy, durable, archive, checksum, size)


def _placed(copy: NewFile, durable: bool, archive: Path, checksum: str, size: int) -> Archived:
    """Seal the finished copy (read-only: the archive never changes a byte; durable if asked)
    and give it its content address (making archive/ab/cd/ the first time)."""
    os.fchmod(copy.fd, 0o444)
    if durable:
        os.fsync(copy.fd)
    target = archive_path(archive, checksum)
    copy.place(target)
    return Archived(checksum, size, target, existed=False)


def _read_all(fd: int) -> bytes:
    """Every byte from ``fd``'s position to its end, in one buffer of the file's size
    (``FileIO.readall`` sizes it from ``fstat``; ``os.read(fd, CHUNK)`` allocates a MiB)."""
    with io.FileIO(fd, closefd=False) as raw:
        return raw.readall()


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
            write_all(target, chunk)
            size += len(chunk)
    return size


def _digest(fd: int, size: int) -> str:
    """The SHA-256 of the file's first ``size`` bytes, read in windows of ``CHUNK`` into one
    reused buffer: memory stays a MiB whatever the size (hashing through a mapping of the
    whole file made a 1 GiB file's pages resident in the process, 1.2 GiB of peak RSS)."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    done = 0
    while done < size:
        got = os.preadv(fd, [view[: min(CHUNK, size - done)]], done)
        if got == 0:
            raise OSError(errno.EIO, f"the archive's copy ended at {done} of {size} bytes")
        digest.update(view[:got])
        done += got
    return digest.hexdigest()


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
