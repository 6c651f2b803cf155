"""The files an `ocr upload` names: plain files, folders (recursive) and glob patterns, checked before any is sent."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

# What a folder contributes: the types the service reads. A file named on its own is sent whatever its name, and
# the service decides from its bytes; a folder's notes and spreadsheets would only come back 415.
DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"})


class BadPath(Exception):
    """A name that is not there, or a pattern matching nothing: the command line is wrong (exit 2)."""


class Unreadable(Exception):
    """A file that is there but cannot be read (exit 1)."""


@dataclass(frozen=True)
class Input:
    path: Path
    # Where its results go under --out: relative to the folder named, else the file's own name.
    name: str


def expand(arguments: list[str]) -> list[Input]:
    """Every file the arguments name, once each, in a stable order; raises on the first bad one."""
    found: list[Input] = []
    for argument in arguments:
        if glob.has_magic(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise BadPath(f"no file matches {argument}")
            found += [Input(f, f.name) for f in files]
        elif Path(argument).is_dir():
            root = Path(argument)
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(root).parts))
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
    return list(unique.values())


def _check_readable(path: Path) -> None:
    # Opening is the only true test (access() answers for the real uid, and root's answer says nothing).
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as e:
        raise Unreadable(f"cannot read {path}: {e.strerror or e}") from e
