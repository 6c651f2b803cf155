"""What the queue does with a call's answer: done, retried after a delay, or dead-lettered. Pure, over a policy value.

As rq's `handle_job_failure` with its `Retry`: the queue only carries the verdict out (acknowledge, schedule,
bury); the rules are here, where a test can run them without Redis or a clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

# 4xx answers that mean "not now" rather than "never": timeout, conflict (job held elsewhere), too early, rate limited.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
# A function's Retry-After is obeyed up to this, so a typo cannot park a call for days.
MAX_RETRY_AFTER_SECONDS = 300.0


class Action(str, enum.Enum):
    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with capped exponential backoff (seconds), jittered by the caller's factor."""

    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    retryable_4xx: frozenset[int] = RETRYABLE_4XX


@dataclass(frozen=True)
class Verdict:
    action: Action
    attempts: int  # the call's attempts once this answer is counted
    delay: float = 0.0  # seconds before the retry


def retry_after(status: int, headers: Mapping[str, str]) -> float | None:
    """A function's Retry-After (seconds form) on 409, 429 or 503, capped; None without a usable one."""
    if status not in (409, 429, 503):
        return None
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(raw))) if raw is not None else None
    except ValueError:
        return None


def decide(policy: RetryPolicy, attempts: int, status: int, headers: Mapping[str, str], jitter: float = 1.0
           ) -> Verdict:
    """The verdict on one answer of a call that had made `attempts` attempts before it.

    `status` 0 means the function could not be reached; `jitter` multiplies a computed backoff (the queue
    draws it from 0.8-1.2, so retries of many calls do not arrive together).
    """
    if 200 <= status < 300:
        return Verdict(Action.DONE, attempts)
    wait = retry_after(status, headers)
    # 409 + Retry-After: "someone else is doing this, ask again then". Not a failure of this call, so it
    # spends no attempt (ocr-process says so while another worker holds the job).
    deferred = status == 409 and wait is not None
    if not deferred:
        attempts += 1
    # The function refused the request itself (malformed, unauthorised, not found): asking again cannot
    # change the answer, so it goes to the dead letters at once, with its reason.
    permanent = 400 <= status < 500 and status not in policy.retryable_4xx
    if permanent or not (deferred or attempts < policy.max_attempts):
        return Verdict(Action.DEAD, attempts)
    if wait is None:
        wait = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempts - 1)) * jitter
    return Verdict(Action.RETRY, attempts, wait)
