"""One structlog set-up for every process: JSON lines with a `service` field and context-bound ids.

Everything a process writes to stderr goes through it: structlog's own events, the standard library's
logging (urllib3, werkzeug, gunicorn, aiohttp, alembic...) and `warnings.warn`, each one JSON record with
its traceback, if any, inside the record.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import structlog

_configured_for: str | None = None


def setup(service: str, level: str = "INFO") -> None:
    """Configure JSON logging once per process; later calls with the same service are no-ops."""
    global _configured_for
    if _configured_for == service:
        return

    def add_service(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        return event

    shared: list[Any] = [
        add_service,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # The standard library's records (a library's warning, an uncaught error logged by a server) as the same
    # JSON records, with the logger's name; the message is the event, as it has no event name of its own.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
    ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # warnings.warn (a library's DeprecationWarning, urllib3's InsecureRequestWarning) as a py.warnings record.
    logging.captureWarnings(True)
    # An error nothing caught ends the process (or its thread) with its traceback in a record, not as bare text.
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda hook: _log_uncaught(hook.exc_type, hook.exc_value, hook.exc_traceback,
                                                      thread=hook.thread.name if hook.thread else None)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write per record, its newline included: print() writes the two apart, and processes sharing a log
        # file (a function's workers) then interleave records on one line.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured_for = service


def _log_uncaught(kind: type[BaseException], value: BaseException | None, traceback: TracebackType | None,
                  **fields: object) -> None:
    if value is None:
        value = kind()
    structlog.get_logger().error("process.uncaught_error", error=repr(value), exc_info=(kind, value, traceback),
                                 **fields)


def get_logger() -> structlog.typing.FilteringBoundLogger:
    """The process logger; fields bound with `bind_context` appear on every line."""
    return structlog.get_logger()


def bind_context(**fields: object) -> None:
    """Bind fields (request_id, job_id, ...) to every log line of the current request or task."""
    structlog.contextvars.bind_contextvars(**fields)


def clear_context() -> None:
    """Forget the fields of the previous request, so ids never leak into the next one."""
    structlog.contextvars.clear_contextvars()
