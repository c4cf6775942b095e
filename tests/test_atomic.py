"""Atomic writes make a missing folder when they meet it, not before every write (issue 13),
and a file gets its name only once it is whole, unnamed until then where the kernel allows
(issue 14: no leftovers from a killed process, no rename for a new file).

The folders are made on a write's first failure only, so these check the paths where they are
missing: the target's folder, a scratch folder, both nested, and the archive's ab/cd/ levels.
Each write test runs both ways a new file is written: unnamed (``O_TMPFILE``, this machine's
default) and under a temporary name (kernels and filesystems without unnamed files).
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from npr_pipeline import atomic
from npr_pipeline.atomic import NewFile, atomic_open, replace, temp_file, write_bytes, write_text
from npr_pipeline.intake.archive import CHUNK, archive_file, archive_path


@pytest.fixture(params=["unnamed", "named"], autouse=True)
def naming(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test both ways: "named" is a process where unnamed files are not possible."""
    if request.param == "unnamed":
        assert atomic.unnamed_file is not None and hasattr(os, "O_TMPFILE")
    else:
        monkeypatch.setattr(atomic, "_links", None)
    return request.param


def test_a_write_makes_missing_target_and_scratch_folders_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    target = tmp_path / "a" / "b" / "answer.xml"
    scratch = tmp_path / "outbox" / ".tmp"
    write_text(target, "one", durable=False, scratch=scratch)
    write_text(target, "two", durable=False, scratch=scratch)
    write_text(tmp_path / "c" / "d" / "beside.xml", "three", durable=False)
    assert target.read_text() == "two"
    assert (tmp_path / "c" / "d" / "beside.xml").read_text() == "three"
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["answer.xml"]


def test_replace_of_a_missing_source_raises_and_makes_no_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replace(tmp_path / "gone", tmp_path / "new" / "file")
    assert not (tmp_path / "new").exists()


def test_archive_file_makes_its_levels_once_and_keeps_identical_bytes_once(tmp_path: Path) -> None:
    source = tmp_path / "in.xml"
    source.write_bytes(b"<x/>")
    archive = tmp_path / "archive"
    first = archive_file(source, archive, durable=False)
    again = archive_file(source, archive, durable=False)
    assert first.path == archive_path(archive, first.checksum)
    assert first.path.read_bytes() == b"<x/>"
    assert (first.existed, again.existed) == (False, True)
    assert sorted(p.name for p in archive.iterdir()) == [first.checksum[:2]]


def test_a_temporary_name_left_by_a_killed_process_is_skipped_and_the_file_is_owner_only(
    tmp_path: Path,
) -> None:
    """Temporary names are the pid and a counter, created exclusively: a leftover under the
    next name (a killed process whose pid was reused) is neither reused nor overwritten."""
    fd, first = temp_file(tmp_path, ".t.", ".tmp")
    os.close(fd)
    serial = int(first.name.split(".")[-2])
    leftover = tmp_path / f".t.{os.getpid()}.{serial + 1}.tmp"
    leftover.write_bytes(b"left by a killed run")
    fd, second = temp_file(tmp_path, ".t.", ".tmp")
    os.close(fd)
    assert second not in (first, leftover)
    assert leftover.read_bytes() == b"left by a killed run"
    assert (second.stat().st_mode & 0o777, first.stat().st_mode & 0o777) == (0o600, 0o600)


def test_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "answer.xml"
    write_bytes(target, b"old", durable=True)
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as fh:
        fh.write(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["answer.xml"]


@pytest.mark.parametrize("size", [4_000, CHUNK, 2 * CHUNK + 7])
def test_archive_file_of_any_size_keeps_its_bytes_read_only_and_replaces_a_cut_copy(
    tmp_path: Path, size: int
) -> None:
    """Files of any size (within, at and past the copy's chunk) give the bytes' SHA-256, a
    read-only copy, and a copy a crash cut short is replaced."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    source = tmp_path / "in.xml"
    source.write_bytes(data)
    archive = tmp_path / "archive"
    checksum = hashlib.sha256(data).hexdigest()
    target = archive_path(archive, checksum)
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: size // 2])  # cut short by a crash before its sync
    first = archive_file(source, archive, durable=False)
    again = archive_file(source, archive, durable=True)
    assert (first.checksum, first.size, first.existed, again.existed) == (
        checksum,
        size,
        False,
        True,
    )
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == 0o444
    assert list(archive.glob(".incoming-*")) == []


def test_a_resent_small_file_writes_nothing_and_a_large_one_only_a_dropped_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes already archived: a small file (every daily file) is recognised before anything
    is written, so a resend makes no new file (each costs its create); a large one is hashed
    from its kernel copy, which is dropped without a trace."""
    archive = tmp_path / "archive"
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    small.write_bytes(b"<x/>" * 100)
    large.write_bytes(b"<y/>" * CHUNK)
    archive_file(small, archive, durable=False)
    archive_file(large, archive, durable=False)
    before = sorted(archive.rglob("*"))
    made = []

    class Counted(NewFile):
        def __init__(self, folder: Path, prefix: str, scratch: Path | None = None) -> None:
            made.append(prefix)
            super().__init__(folder, prefix, scratch)

    monkeypatch.setattr("npr_pipeline.intake.archive.NewFile", Counted)
    assert archive_file(small, archive, durable=False).existed
    assert made == []
    assert archive_file(large, archive, durable=False).existed
    assert made == [".incoming-"]
    assert sorted(archive.rglob("*")) == before


@pytest.mark.parametrize("size", [4, 2 * CHUNK])
def test_archive_file_that_fails_to_place_its_copy_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The new copy is dropped when the write fails, as it is named when it succeeds."""
    source = tmp_path / "in.xml"
    source.write_bytes(b"x" * size)
    archive = tmp_path / "archive"

    def refused(self: NewFile, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(NewFile, "place", refused)
    with pytest.raises(OSError, match="disk full"):
        archive_file(source, archive, durable=False)
    assert list(archive.rglob("*")) == []


def _killed_mid_write(target: Path, naming: str) -> None:
    """A child that dies by SIGKILL with half of ``target``'s new bytes written."""
    if naming == "named":
        atomic._links = None
    with atomic_open(target, "wb", durable=False) as fh:
        fh.write(b"half")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_process_killed_mid_write_leaves_the_old_file_and_nothing_unnamed_leaves_no_trace(
    tmp_path: Path, naming: str
) -> None:
    """kill -9 mid-write: the old file stays; an unnamed file dies with the process, a
    temporary name stays for intake's sweep (``intake.run``) to remove."""
    target = tmp_path / "answer.xml"
    write_bytes(target, b"old", durable=False)
    child = multiprocessing.get_context("spawn").Process(
        target=_killed_mid_write, args=(target, naming)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    left = sorted(p.name for p in tmp_path.iterdir() if p != target)
    if naming == "unnamed":
        assert left == []
    else:
        assert len(left) == 1 and left[0].startswith(".answer.xml.") and left[0].endswith(".tmp")


def _write_in_fork(target: Path) -> None:
    write_bytes(target, b"child", durable=False)


def test_a_forked_child_names_its_own_file_not_its_parents(tmp_path: Path) -> None:
    """A forked child inherits its parent's ``/proc/self/fd``, which lists the parent's
    descriptors: linking through it would give the child's name to whatever the parent has
    open under the same number."""
    write_bytes(tmp_path / "parent", b"parent", durable=False)  # the parent's is open now
    child = multiprocessing.get_context("fork").Process(
        target=_write_in_fork, args=(tmp_path / "child",)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert (tmp_path / "child").read_bytes() == b"child"
    assert (tmp_path / "parent").read_bytes() == b"parent"


@pytest.mark.parametrize("refusal", [None, errno.EXDEV, errno.EINVAL])
@pytest.mark.parametrize("size", [0, 3, 2 * CHUNK + 7])
def test_archive_file_copies_in_the_kernel_or_through_a_buffer_where_it_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, refusal: int | None
) -> None:
    """``copy_file_range`` refused before it copied (another filesystem on an old kernel):
    the copy goes through a buffer; either way the archive holds the bytes under their
    SHA-256, read-only, and an empty file too."""
    data = bytes(range(256)) * (size // 256) + b"y" * (size % 256)
    source = tmp_path / "in.xml"
    source.write_bytes(data)
    if refusal is not None:

        def refused(*args: object) -> int:
            raise OSError(refusal, os.strerror(refusal))

        monkeypatch.setattr(os, "copy_file_range", refused)
    kept = archive_file(source, tmp_path / "archive", durable=False)
    assert (kept.checksum, kept.size) == (hashlib.sha256(data).hexdigest(), size)
    assert kept.path.read_bytes() == data
    assert kept.path.stat().st_mode & 0o777 == 0o444
    assert list((tmp_path / "archive").glob(".incoming-*")) == []
