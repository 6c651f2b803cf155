"""Function logs as OpenFaaS's log API gives them (faas-provider's `logs` package, read by `faas-cli logs`).

`GET /system/logs?name=NAME[&namespace=openfaas-fn][&instance=ID][&since=RFC3339][&tail=N][&follow=true]`
answers newline-delimited JSON, one record per log line: `{"name", "namespace", "instance", "timestamp",
"text"}`. The lines come from the file the provider appends a function's output to. A record's timestamp
is the line's own `timestamp` (every JSON line the functions log has one, in UTC); a line without one (a
traceback, a library's plain message) takes the time of the line before it. Its instance is the process
start the line belongs to, from the marker line the provider writes before each start (not a record).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ocrstack.gateway.provider import START_EVENT

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# faas-provider's strconv.ParseBool: anything else is false.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


class BadLogRequest(ValueError):
    """A query faas-provider could not parse either (answered 422, as it does)."""


@dataclass(frozen=True)
class LogRequest:
    name: str
    namespace: str = ""
    instance: str = ""
    since: datetime | None = None
    tail: int = 0  # <= 0: every record
    follow: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "LogRequest":
        """The query parameters faas-cli sends (proxy/logs.go), read as faas-provider's parseRequest does."""
        tail_text = query.get("tail", "")
        try:
            tail = int(tail_text) if tail_text else 0
        except ValueError:
            raise BadLogRequest(f"tail={tail_text!r} is not an integer") from None
        since_text = query.get("since", "")
        since = None
        if since_text:
            try:
                since = parse_time(since_text)
            except ValueError:
                raise BadLogRequest(f"since={since_text!r} is not an RFC 3339 time") from None
        return cls(name=query.get("name", ""), namespace=query.get("namespace", ""),
                   instance=query.get("instance", ""), since=since, tail=tail,
                   follow=query.get("follow", "") in _TRUE)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (a trailing Z, fractions of a second allowed) as an aware datetime."""
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class LogRecord:
    name: str
    instance: str
    timestamp: datetime
    text: str

    def json_line(self, namespace: str) -> bytes:
        record = {"name": self.name, "namespace": namespace, "instance": self.instance,
                  "timestamp": rfc3339(self.timestamp), "text": self.text}
        return (json.dumps(record, ensure_ascii=False) + "\n").encode()


class LogFile:
    """Reads one function's log file from where it left off, turning complete lines into records."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.offset = 0
        self.partial = b""
        self.instance = name  # lines from before any start marker (files of older gateways)
        self.last_time = EPOCH

    def read_new(self) -> list[LogRecord]:
        """The records of the lines completed since the last call (a line still being written waits)."""
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, 2)
                if size < self.offset:  # replaced or truncated: start over
                    self.offset, self.partial = 0, b""
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        records = []
        for raw in lines:
            record = self._record(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if record is not None:
                records.append(record)
        return records

    def _record(self, text: str) -> LogRecord | None:
        fields = _json_object(text)
        if fields is not None:
            stamp = fields.get("timestamp")
            if isinstance(stamp, str):
                try:
                    self.last_time = parse_time(stamp)
                except ValueError:
                    pass
            if fields.get("event") == START_EVENT and fields.get("service") == "gateway":
                self.instance = str(fields.get("instance") or self.name)
                return None
        if not text:
            return None
        return LogRecord(self.name, self.instance, self.last_time, text)


def _json_object(text: str) -> dict[str, object] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def wanted(record: LogRecord, request: LogRequest) -> bool:
    if request.instance and record.instance != request.instance:
        return False
    return request.since is None or record.timestamp >= request.since
