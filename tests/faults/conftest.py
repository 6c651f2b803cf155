"""The fault suite's own stack (its faults kill and stop parts of it) and the table it prints at the end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import REPO_ROOT


@dataclass
class Row:
    case: str
    tried: int = 0
    survived: int = 0
    lost: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Ledger:
    """What each fault or input did to the jobs it touched: accepted (tried), finished right (survived), lost."""

    rows: list[Row] = field(default_factory=list)
    uploads: int = 0  # the load's uploads over every fault (test_faults.Load)

    def row(self, case: str) -> Row:
        self.rows.append(Row(case))
        return self.rows[-1]

    def table(self) -> list[str]:
        width = max([len(r.case) for r in self.rows] + [4])
        lines = [f"{'case':<{width}}  tried  survived  lost"]
        for r in self.rows:
            lines.append(f"{r.case:<{width}}  {r.tried:>5}  {r.survived:>8}  {r.lost:>4}"
                         + (f"  ({'; '.join(r.notes)})" if r.notes else ""))
        return lines


LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A stack of the fault suite's own, on free ports: MariaDB, Redis, MinIO, the supervised gateway."""
    from ocrstack.stack import LocalStack, StackPorts

    from tests.support import not_json_records

    local = LocalStack(tmp_path_factory.mktemp("faults"), StackPorts.free(), REPO_ROOT)
    try:
        local.start()
        yield local
    finally:
        local.stop()
    # Killed processes and stopped services included, every line written is a JSON record.
    bad = not_json_records(local.state_dir)
    assert not bad, f"{len(bad)} log lines are not JSON records:\n" + "\n".join(bad[:20])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEDGER.rows:
        terminalreporter.section("fault injection: accepted jobs per fault")
        for line in LEDGER.table():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"load: {LEDGER.uploads} uploads, 8 clients at once, across the faults")
