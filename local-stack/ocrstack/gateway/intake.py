"""Request bodies at the edge: received whole, within a size limit and a minimum rate, before a function sees them.

The gateway takes a body into a spooled file (memory, then disk) and only then calls the function. A slow
client then holds a connection of the gateway's event loop, which costs a socket and a little memory, and
never one of the function's few worker threads (functions-framework runs 4 per core): no fixed number of
slow senders can stop everyone else's uploads. This is what a buffering proxy such as nginx does in front of
thread-per-request servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import IO

from aiohttp import web

from common.errors import BodyTooSlow, FileTooLarge
from common.models import UPLOAD_FORM_ROOM_BYTES

# Bodies past this go to a temporary file: with aiohttp's read buffer (at most 2 x 64 KiB before it stops
# reading), a connection costs at most about 192 KiB of memory, so --max-connections 256 stays under 64 MiB.
SPOOL_BYTES = 64 * 1024
_CHUNK = 64 * 1024
# The stack file annotation naming the setting (an environment variable) that bounds a function's request
# body, as `com.ocr-pipeline.access` names its key check: the gateway refuses a larger body itself.
BODY_LIMIT_ANNOTATION = "com.ocr-pipeline.body-limit"
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class BodyRules:
    """How much a body may hold and how slowly it may come.

    `min_rate` (bytes per second, averaged since the first byte was awaited) applies once `grace` seconds
    have passed; `idle` is the longest wait for the next bytes. A client under either gets 408.
    """

    max_bytes: int
    min_rate: float = 8 * 1024
    grace: float = 10.0
    idle: float = 10.0
    # How a body over max_bytes is refused: the code, and the setting that holds the limit. A function's own
    # limit is refused with the function's own code, so a client sees one code wherever the body stopped.
    too_large_code: str = "payload_too_large"
    limit_setting: str = "the gateway's --max-body-bytes"


def body_limit_of(annotations: Mapping[str, str]) -> str | None:
    """The setting a function bounds its body with, from its stack file annotations; ValueError for a bad name."""
    name = annotations.get(BODY_LIMIT_ANNOTATION, "").strip()
    if name and not _SETTING_NAME.fullmatch(name):
        raise ValueError(f"{BODY_LIMIT_ANNOTATION}: {name!r} is not an environment variable name")
    return name or None


def rules_for_function(rules: BodyRules, setting: str | None, environment: Mapping[str, str]) -> BodyRules:
    """The gateway's body rules, with the function's own limit when it is smaller: the value of its body-limit
    setting plus room for a multipart form, refused with the function's own code (as it would refuse it)."""
    stated = environment.get(setting, "") if setting else ""
    if not stated.isdigit() or int(stated) + UPLOAD_FORM_ROOM_BYTES >= rules.max_bytes:
        return rules
    return dataclasses.replace(
        rules, max_bytes=int(stated) + UPLOAD_FORM_ROOM_BYTES, too_large_code=FileTooLarge.code,
        limit_setting=f"{setting}={stated} plus {UPLOAD_FORM_ROOM_BYTES} bytes for the form")


class BodyRefused(Exception):
    """A body the gateway will not pass on: too large (413) or too slow (408)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def too_large(rules: BodyRules, function: str) -> BodyRefused:
    return BodyRefused(413, rules.too_large_code,
                       f"the body exceeds the limit of {rules.max_bytes} bytes for {function} "
                       f"({rules.limit_setting}); refused at the gateway")


class ReceivedBody:
    """A body received in full: its size and its bytes, held in a spooled file until closed."""

    def __init__(self, spool: IO[bytes], size: int) -> None:
        self.spool, self.size = spool, size

    def read_all(self) -> bytes:
        self.spool.seek(0)
        return self.spool.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        self.spool.seek(0)
        while chunk := self.spool.read(_CHUNK):
            yield chunk

    def close(self) -> None:
        self.spool.close()


def declared_too_large(request: web.Request, rules: BodyRules, function: str) -> BodyRefused | None:
    """A Content-Length over the limit is refused before a byte of the body is read."""
    if request.content_length is not None and request.content_length > rules.max_bytes:
        return too_large(rules, function)
    return None


async def receive(request: web.Request, rules: BodyRules, function: str) -> ReceivedBody:
    """The whole body, counted as it arrives (chunked bodies have no length to trust); raises BodyRefused."""
    refused = declared_too_large(request, rules, function)
    if refused is not None:
        raise refused
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    size = 0
    started = time.monotonic()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(request.content.readany(), timeout=rules.idle)
            except asyncio.TimeoutError:
                raise BodyRefused(BodyTooSlow.http_status, BodyTooSlow.code,
                                  f"no bytes of the body arrived for {rules.idle:g} s (the gateway's idle limit)")
            if not chunk:
                break
            size += len(chunk)
            if size > rules.max_bytes:
                raise too_large(rules, function)
            spool.write(chunk)
            elapsed = time.monotonic() - started
            if elapsed > rules.grace and size / elapsed < rules.min_rate:
                raise BodyRefused(BodyTooSlow.http_status, BodyTooSlow.code,
                                  f"the body arrived at {size / elapsed:.0f} bytes/s, under the gateway's minimum "
                                  f"of {rules.min_rate:.0f} bytes/s after its first {rules.grace:g} s")
    except BaseException:
        spool.close()
        raise
    return ReceivedBody(spool, size)
