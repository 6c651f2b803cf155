"""`python -m ocrstack.supervise -- CMD...`: run CMD, and start it again with backoff whenever it crashes.

The local stack runs its gateway this way, as a process manager would: a gateway that dies (a bug, an
OOM kill, `kill -9`) is back within seconds, and its functions die with it (see `die_with_parent`), so
nothing is left holding ports or memory. A stop (SIGTERM or SIGINT to this process) is passed on and
ends the loop. A command that exits with an error within its first seconds the very first time is a
set-up error, not a crash: the supervisor then exits with its code at once, so `up` reports it instead of
looping.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from common.logging import get_logger, setup

_PR_SET_PDEATHSIG = 1

log = get_logger()


def fresh_signals() -> None:
    """A preexec_fn: the child starts with no signal blocked, and SIGINT and SIGTERM at their defaults.

    A signal mask and ignored signals are inherited through exec: a stack started from a runner that blocks
    SIGINT, or from `cmd &` (SIGINT ignored), would otherwise give its services and functions a stop signal
    that stays pending forever.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when the process that started it dies (Linux prctl).

    SIGKILL by default: the parent is gone, so nobody could stop the child any other way. Note the
    kernel's rule: "parent" is the thread that forked, so call it from a thread that lives as long as
    the parent (the main thread, or the event loop's).
    """
    parent = os.getpid()

    def arm() -> None:
        fresh_signals()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocrstack.supervise", description=__doc__.splitlines()[0])
    parser.add_argument("--max-backoff", type=float, default=30.0, help="longest wait between restarts (s)")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="a first run failing sooner is a set-up error; a run longer than this resets the backoff")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to supervise after --")

    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    setup("supervise")  # its lines share the supervised gateway's log: JSON records like the gateway's
    backoff = 1.0
    first = True
    while True:
        started = time.monotonic()
        # A session of its own: a stop signal sent to this supervisor's group reaches the command once,
        # passed on by `stop` (a second SIGTERM would cut short the gateway's own clean-up).
        child = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent())
        code = child.wait()
        lived = time.monotonic() - started
        if stopping or code == 0:
            return code
        # Exiting by itself with an error before settling is how a bad configuration shows; a signal
        # (kill -9, the OOM killer) is a crash whenever it comes.
        if first and lived < args.settle and code > 0:
            log.error("supervise.failed_at_start", command=command[0], exit_code=code, restarting=False)
            return code
        first = False
        backoff = 1.0 if lived > args.settle else min(args.max_backoff, backoff * 2)
        log.warning("supervise.restarting", command=" ".join(command[:3]), exit_code=code,
                    lived_seconds=round(lived, 1), backoff_seconds=backoff)
        deadline = time.monotonic() + backoff
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        if stopping:
            return code


if __name__ == "__main__":
    sys.exit(main())
