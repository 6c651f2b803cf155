"""The fenced lease shared by jobs and chunks: taken with a fresh token, live until it runs out, released."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from common.config import load_settings
from common.rules import lease


@dataclass
class Row:
    claim_token: str | None = None
    lease_expires_at: datetime | None = None


SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "x", "S3_SECRET_KEY": "x",
                          "JOB_LEASE_SECONDS": "30"})
NOW = datetime(2026, 12, 6, 12, 0, 0)


def test_taking_a_lease_gives_a_fresh_token_and_a_full_lease() -> None:
    """Each take is a new token (the old holder is fenced off) and runs JOB_LEASE_SECONDS from now."""
    row = Row()
    first = lease.take(SETTINGS, row, NOW)
    second = lease.take(SETTINGS, row, NOW)
    assert first != second and row.claim_token == second
    assert row.lease_expires_at == NOW + timedelta(seconds=30)


def test_a_lease_is_live_until_it_runs_out() -> None:
    """Live up to its end, not after; a row nobody holds is not live."""
    row = Row()
    assert not lease.is_live(row, NOW)
    lease.take(SETTINGS, row, NOW)
    assert lease.is_live(row, NOW + timedelta(seconds=30))
    assert not lease.is_live(row, NOW + timedelta(seconds=30, microseconds=1))


def test_retry_after_is_the_whole_seconds_left_and_at_least_one() -> None:
    """One formula for jobs and chunks: the seconds left rounded up, never 0."""
    row = Row(lease_expires_at=NOW + timedelta(seconds=2, milliseconds=100))
    assert lease.retry_after(row, NOW) == 3
    assert lease.retry_after(Row(lease_expires_at=NOW - timedelta(seconds=5)), NOW) == 1
    assert lease.retry_after(Row(), NOW) == 1


def test_letting_go_leaves_no_holder() -> None:
    """Released: no token, no lease."""
    row = Row()
    lease.take(SETTINGS, row, NOW)
    lease.let_go(row)
    assert row == Row()
