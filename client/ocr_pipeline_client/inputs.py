"""The files an `ocr upload` names: plain files, folders (recursive) and glob patterns, checked before any is sent."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

# What a folder contributes: the types the service reads. A file named on its own is sent whatever its name, and
# the service decides from its bytes; a folder's notes and spreadsheets would only come back 415.
DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"})
# The searchable PDFs `--out` saves: a folder or pattern that holds them (`upload scans/ --out scans/` again)
# does not send them back as new documents. Named on its own, such a file is sent like any other.
RESULT_SUFFIX = ".ocr.pdf"


class BadPath(Exception):
    """A name that is not there, or a pattern matching nothing: the command line is wrong (exit 2)."""


class Unreadable(Exception):
    """A file that is there but cannot be read (exit 1)."""


@dataclass(frozen=True)
class Input:
    path: Path
    # Where its results go under --out: relative to the folder named, else the file's own name.
    name: str


def is_result(path: Path) -> bool:
    """Whether the file is a searchable PDF this client saved (its name ends in .ocr.pdf)."""
    return path.name.lower().endswith(RESULT_SUFFIX)


def expand(arguments: list[str], skipped: list[Path] | None = None) -> list[Input]:
    """Every file the arguments name, once each, in a stable order; raises on the first bad one. Results of an
    earlier run found in folders and patterns are left out, and added to `skipped` when it is given."""
    found: list[Input] = []
    left_out: list[Path] = []
    for argument in arguments:
        if glob.has_magic(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            left_out += [f for f in files if is_result(f)]
            files = [f for f in files if not is_result(f)]
            if not files:
                raise BadPath(f"no file matches {argument}")
            found += [Input(f, f.name) for f in files]
        elif Path(argument).is_dir():
            root = Path(argument)
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(root).parts))
            left_out += [f for f in files if is_result(f)]
            files = [f for f in files if not is_result(f)]
            if not files:
                raise BadPath(f"no document in folder {argument} (looked for {', '.join(sorted(DOCUMENT_SUFFIXES))})")
            found += [Input(f, f.relative_to(root).as_posix()) for f in files]
        elif Path(argument).exists():
            found.append(Input(Path(argument), Path(argument).name))
        else:
            raise BadPath(f"no such file or folder: {argument}")
    unique: dict[Path, Input] = {}
    for item in found:
        unique.setdefault(item.path.resolve(), item)
    for item in unique.values():
        _check_readable(item.path)
    if skipped is not None:
        skipped += left_out
    return list(unique.values())


def _check_readable(path: Path) -> None:
    # Opening is the only true test (access() answers for the real uid, and root's answer says nothing).
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as e:
        raise Unreadable(f"cannot read {path}: {e.strerror or e}") from e
