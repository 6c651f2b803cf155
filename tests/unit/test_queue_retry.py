"""The queue's verdict on a call's answer, alone: done, retried after a backoff or Retry-After, or dead-lettered."""

from __future__ import annotations

import pytest

from ocrstack.gateway.retry import Action, RetryPolicy, Verdict, decide, retry_after

POLICY = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_cap=30.0)


@pytest.mark.parametrize("status", [200, 202, 204])
def test_a_2xx_is_done_and_spends_no_attempt(status: int) -> None:
    """Success acknowledges the call as it is."""
    assert decide(POLICY, 1, status, {}) == Verdict(Action.DONE, 1)


@pytest.mark.parametrize(("attempts", "delay"), [(0, 1.0), (1, 2.0)])
def test_a_5xx_or_an_unreachable_function_is_retried_with_doubling_backoff(attempts: int, delay: float) -> None:
    """1 s, then 2 s, ... each failure counted."""
    for status in (500, 0):
        assert decide(POLICY, attempts, status, {}) == Verdict(Action.RETRY, attempts + 1, delay)


def test_the_backoff_is_capped_and_jittered_by_the_callers_factor() -> None:
    """A long run of failures waits the cap at most, times the jitter drawn by the queue."""
    policy = RetryPolicy(max_attempts=20, backoff_base=1.0, backoff_cap=30.0)
    assert decide(policy, 10, 503, {}, jitter=1.2) == Verdict(Action.RETRY, 11, 36.0)
    assert decide(policy, 0, 503, {}, jitter=0.8).delay == pytest.approx(0.8)


def test_the_last_attempt_goes_to_the_dead_letters() -> None:
    """Past max_attempts nothing is retried."""
    assert decide(POLICY, 2, 500, {}) == Verdict(Action.DEAD, 3)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_a_refusal_by_the_function_is_dead_at_once(status: int) -> None:
    """Asking again cannot change a 4xx that means "never"."""
    assert decide(POLICY, 0, status, {}) == Verdict(Action.DEAD, 1)


@pytest.mark.parametrize("status", [408, 409, 425, 429])
def test_a_4xx_that_means_not_now_is_retried(status: int) -> None:
    """Timeout, conflict, too early and rate limited are worth another try."""
    assert decide(POLICY, 0, status, {}).action == Action.RETRY


def test_a_conflict_with_retry_after_waits_as_told_without_spending_an_attempt() -> None:
    """409 + Retry-After: another worker holds the job; even at the last attempt the call waits, uncounted."""
    assert decide(POLICY, 2, 409, {"retry-after": "7"}) == Verdict(Action.RETRY, 2, 7.0)


def test_retry_after_on_429_or_503_sets_the_delay_but_still_counts() -> None:
    """The function says when; the attempt is spent all the same."""
    assert decide(POLICY, 0, 429, {"Retry-After": "5"}, jitter=1.2) == Verdict(Action.RETRY, 1, 5.0)
    assert decide(POLICY, 2, 503, {"Retry-After": "5"}) == Verdict(Action.DEAD, 3)


@pytest.mark.parametrize(("status", "headers", "expected"), [
    (503, {"Retry-After": "99999"}, 300.0), (503, {"Retry-After": "-3"}, 0.0), (503, {"Retry-After": "soon"}, None),
    (500, {"Retry-After": "5"}, None), (429, {}, None),
])
def test_retry_after_is_read_on_409_429_503_only_and_capped(status: int, headers: dict[str, str],
                                                             expected: float | None) -> None:
    """A typo cannot park a call for days; a date form or garbage is ignored."""
    assert retry_after(status, headers) == expected
