"""Results written beside the user's files: a new name is created whole or not at all, an existing one is
never replaced unless the caller forces it.

A result is written to a temporary file in the target's folder first, then put in place in one step: by a
hard link when nothing may be replaced (link(2) fails if the name exists, so a file that appears meanwhile,
even from another process, is left as it is), by rename(2) when replacing is asked for. Either way no reader
ever sees a half-written result, and an existing file is never truncated."""

from __future__ import annotations

import email.message
import email.utils
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from ocr_pipeline_client.errors import OutputExists

# link(2) is refused on some file systems (FAT, some network and FUSE mounts): an exclusive create and a copy
# stand in there, which still never replaces a file, though a reader may see the copy growing.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def attachment_name(header: str | None) -> str | None:
    """The file name a `Content-Disposition` answer header gives (`filename*`, RFC 5987, before `filename`),
    as a bare name: a folder part, a name of dots alone or one with control characters gives None, so a
    service can never make the client write outside the folder it was given."""
    if not header:
        return None
    message = email.message.Message()
    message["Content-Disposition"] = header
    params = message.get_params(header="content-disposition") or []
    names = [email.utils.collapse_rfc2231_value(value) for key, value in params if key.lower() == "filename"]
    # The extended (RFC 2231) form, read as a (charset, language, value) tuple, is the exact one when present.
    extended = [email.utils.collapse_rfc2231_value(value) for key, value in params
                if key.lower() == "filename" and isinstance(value, tuple)]
    name = (extended or names or [""])[0]
    if "/" in name or "\\" in name or name.strip(".") == "" or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return None
    return name


def refuse_existing(paths: Iterable[Path], force: bool = False) -> None:
    """Raise `OutputExists` naming the first of `paths` that exists (all of them counted), unless `force`.

    A check before the work (an upload, a download) so nothing is spent on a result that cannot be saved;
    `write_new` checks again when it puts the file in place."""
    if force:
        return
    taken = [p for p in paths if os.path.lexists(p)]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise OutputExists(taken[0], f"{taken[0]} exists{more}; nothing was replaced: choose another name or "
                                     "folder, or pass --force to replace it")


def write_new(path: Path, write: Callable[[IO[bytes]], int], force: bool = False) -> int:
    """Create `path` with what `write(file)` writes (it returns the byte count, passed on); `OutputExists` if
    the name is taken and not `force`. A failure part-way leaves no file and no temporary behind."""
    refuse_existing([path], force)
    fd, temporary = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            written = write(f)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(temporary, path)
        else:
            _link_new(Path(temporary), path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    return written


def _link_new(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise _taken(path) from None
    except OSError as e:
        if e.errno not in _NO_LINKS:
            raise
        try:
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise _taken(path) from None
        with os.fdopen(target, "wb") as out, temporary.open("rb") as source:
            shutil.copyfileobj(source, out)


def _taken(path: Path) -> OutputExists:
    return OutputExists(path, f"{path} appeared while it was being written; it was left as it is "
                              "(pass --force to replace it)")


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A new, uniquely named file in `path`'s folder (the same file system, so it can be linked or renamed into
    place). Not mkstemp: its 0600 would stay on the result, where a user's umask should decide, as for any file
    they create."""
    for _ in range(100):
        # The name cut short: the extra characters must not take a long one past the 255 bytes a name may have.
        candidate = path.with_name(f".{path.name[:100]}.{secrets.token_hex(6)}.partial")
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(candidate)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))
