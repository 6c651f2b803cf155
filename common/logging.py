"""One structlog set-up for every process: JSON lines with a `service` field and context-bound ids."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_configured_for: str | None = None


def setup(service: str, level: str = "INFO") -> None:
    """Configure JSON logging once per process; later calls with the same service are no-ops."""
    global _configured_for
    if _configured_for == service:
        return
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper(), force=True)
    def add_service(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        return event

    structlog.configure(
        processors=[
            add_service,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured_for = service


def get_logger() -> structlog.typing.FilteringBoundLogger:
    """The process logger; fields bound with `bind_context` appear on every line."""
    return structlog.get_logger()


def bind_context(**fields: object) -> None:
    """Bind fields (request_id, job_id, ...) to every log line of the current request or task."""
    structlog.contextvars.bind_contextvars(**fields)


def clear_context() -> None:
    """Forget the fields of the previous request, so ids never leak into the next one."""
    structlog.contextvars.clear_contextvars()
