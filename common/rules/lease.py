"""A fenced lease on a row (a job, or one chunk of a fanned-out job): taken with a fresh token, renewed while
its worker lives, honoured only with that token, and released; one set of rules for both kinds of row.

The token fences: a worker whose lease ran out and was taken over still holds the old token, so every write
it tries (a page, a renewal, the finish) matches no row and is refused, however late it wakes up.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from common.adapters.db import session_scope, utcnow
from common.config import Settings


class Leased(Protocol):
    """What a leased row carries: its holder's token and when the lease runs out (both None when unheld)."""

    claim_token: str | None
    lease_expires_at: datetime | None


Row = TypeVar("Row", bound=Leased)


def new_token() -> str:
    return str(uuid.uuid4())


def expiry(settings: Settings, now: datetime | None = None) -> datetime:
    """When a lease taken or renewed now runs out (JOB_LEASE_SECONDS)."""
    return (now or utcnow()) + timedelta(seconds=settings.job_lease_seconds)


def is_live(row: Leased, now: datetime) -> bool:
    """Held, and not yet run out."""
    return row.lease_expires_at is not None and row.lease_expires_at >= now


def retry_after(row: Leased, now: datetime) -> int:
    """Whole seconds until the lease runs out (at least 1): when a delivery should come back, as by then
    the lease is either renewed (its worker lives) or free to take."""
    if row.lease_expires_at is None:
        return 1
    return max(1, math.ceil((row.lease_expires_at - now).total_seconds()))


def take(settings: Settings, row: Leased, now: datetime) -> str:
    """Give the row a fresh token and a full lease (inside the caller's transaction); returns the token."""
    row.claim_token = new_token()
    row.lease_expires_at = expiry(settings, now)
    return row.claim_token


def let_go(row: Leased) -> None:
    """No holder: no token, no lease."""
    row.claim_token = None
    row.lease_expires_at = None


def held(session: Session, model: type[Row], token: str, *where: ColumnElement[bool]) -> Row | None:
    """The row locked, if `token` still holds it (`where`: its key and the state a held row is in); else None."""
    holder: ColumnElement[bool] = getattr(model, "claim_token") == token
    return session.execute(select(model).where(holder, *where).with_for_update()).scalar_one_or_none()


def renew(settings: Settings, model: type[Row], token: str, *where: ColumnElement[bool]) -> bool:
    """Heartbeat: push the lease's end forward; False once the token no longer holds the row."""
    with session_scope(settings) as session:
        row = held(session, model, token, *where)
        if row is None:
            return False
        row.lease_expires_at = expiry(settings)
        return True
