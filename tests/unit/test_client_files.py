"""Results written by the client: a new name whole or not at all, an existing file never replaced unless forced."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from ocr_pipeline_client import files
from ocr_pipeline_client.errors import OutputExists


def _writer(data: bytes) -> Callable[[IO[bytes]], int]:
    def write(f: IO[bytes]) -> int:
        return f.write(data)
    return write


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_a_new_name_is_written_whole_with_the_users_umask(tmp_path: Path) -> None:
    """The result has what was written, the mode a new file of the user's gets, and no temporary is left."""
    old = os.umask(0o027)
    try:
        written = files.write_new(tmp_path / "scan.ocr.pdf", _writer(b"%PDF-result"))
    finally:
        os.umask(old)
    assert written == 11 and (tmp_path / "scan.ocr.pdf").read_bytes() == b"%PDF-result"
    assert (tmp_path / "scan.ocr.pdf").stat().st_mode & 0o777 == 0o640
    assert _leftovers(tmp_path) == []


def test_an_existing_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """output_exists names the file; the writer is never called and the file keeps its bytes."""
    original = tmp_path / "scan.txt"
    original.write_bytes(b"the user's own notes")
    called: list[bool] = []

    def write(f: IO[bytes]) -> int:
        called.append(True)
        return f.write(b"result")

    with pytest.raises(OutputExists) as refused:
        files.write_new(original, write)
    assert refused.value.code == "output_exists" and refused.value.path == str(original)
    assert str(original) in refused.value.message and "--force" in refused.value.message
    assert called == [] and original.read_bytes() == b"the user's own notes"
    assert _leftovers(tmp_path) == []


def test_a_file_that_appears_during_the_write_is_left_as_it_is(tmp_path: Path) -> None:
    """A race: another process creates the name while the result is being written; that file wins, untouched."""
    target = tmp_path / "scan.hocr"

    def write(f: IO[bytes]) -> int:
        target.write_bytes(b"written meanwhile by someone else")
        return f.write(b"<html>result</html>")

    with pytest.raises(OutputExists) as refused:
        files.write_new(target, write)
    assert "appeared while it was being written" in refused.value.message
    assert target.read_bytes() == b"written meanwhile by someone else"
    assert _leftovers(tmp_path) == []


def test_force_replaces_in_one_step(tmp_path: Path) -> None:
    """With force the old file is replaced by a new inode: a reader holding the old one still reads it whole."""
    target = tmp_path / "scan.txt"
    target.write_bytes(b"old text")
    with target.open("rb") as reader:
        files.write_new(target, _writer(b"new text"), force=True)
        assert reader.read() == b"old text"  # never truncated in place
    assert target.read_bytes() == b"new text"
    assert _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_nothing(tmp_path: Path) -> None:
    """A download that breaks part-way leaves neither a result nor a temporary."""
    def write(f: IO[bytes]) -> int:
        f.write(b"half")
        raise ConnectionError("the link went away")

    with pytest.raises(ConnectionError):
        files.write_new(tmp_path / "scan.ocr.pdf", write)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exists", [False, True])
def test_without_hard_links_an_exclusive_create_still_never_replaces(exists: bool, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system refusing link(2) (FAT, some network mounts) the result is copied into an exclusively
    created name: written when new, refused when a file is there."""
    def no_links(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "scan.txt"
    real_write = _writer(b"result")

    def write(f: IO[bytes]) -> int:
        if exists:
            target.write_bytes(b"appeared meanwhile")
        return real_write(f)

    if exists:
        with pytest.raises(OutputExists):
            files.write_new(target, write)
        assert target.read_bytes() == b"appeared meanwhile"
    else:
        assert files.write_new(target, write) == 6 and target.read_bytes() == b"result"
    assert _leftovers(tmp_path) == []


def test_refuse_existing_counts_every_taken_name(tmp_path: Path) -> None:
    """One message for a batch: the first taken name, and how many more."""
    names = [tmp_path / n for n in ("a.txt", "a.ocr.pdf", "a.hocr")]
    names[1].write_bytes(b"x")
    names[2].write_bytes(b"y")
    with pytest.raises(OutputExists) as refused:
        files.refuse_existing(names)
    assert refused.value.path == str(names[1]) and "(and 1 more)" in refused.value.message
    files.refuse_existing(names, force=True)
    files.refuse_existing([names[0]])
