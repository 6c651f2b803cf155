"""Where a request's code may wait on the network: the one rule that lets sync code run on an event loop.

A function served on an event loop (see common/web/loop.py) runs its handler on the loop itself when every
value the handler needs was fetched ahead (a status cache hit), and in a worker thread otherwise. It cannot
know beforehand which it will be, so it tries the loop first under `forbidden()`: the adapters call
`check()` before they touch Redis, MySQL or MinIO, and that raises WouldBlock, which sends the call to a
thread. A call that raised WouldBlock has done no I/O, so running it again from the start is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_forbidden: ContextVar[bool] = ContextVar("blocking_forbidden", default=False)


class WouldBlock(BaseException):
    """Code under `forbidden()` was about to wait on `service`.

    A BaseException, as KeyboardInterrupt is: it must pass through every `except Exception` between the
    adapter and the loop, which would otherwise log it as a failure or turn it into an error answer.
    """

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} would block the event loop")
        self.service = service


@contextmanager
def forbidden() -> Iterator[None]:
    token = _forbidden.set(True)
    try:
        yield
    finally:
        _forbidden.reset(token)


def check(service: str) -> None:
    """Called by an adapter before it waits on `service`: raises WouldBlock on the event loop."""
    if _forbidden.get():
        raise WouldBlock(service)
