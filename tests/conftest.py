"""Session fixtures: the real local stack (MariaDB, Redis, MinIO, gateway and functions) for integration tests,
and veraPDF for the PDF/A checks."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (`timeout`, a CI job's cancel) tears its fixtures down as Ctrl-C does: the
    stacks they started are daemons, so a run killed without teardown would leave them all running."""
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--openfaas", action="store_true", default=False,
                     help="run only the opt-in OpenFaaS tier (tests marked openfaas), as ./local-stack/openfaas-tier "
                          "does inside the faasd it starts; without it those tests are deselected")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The OpenFaaS tier needs faasd and the CE gateway built from the user's clones: by default its tests are
    deselected (not skipped: nothing is missing, the tier is opt-in); with --openfaas only they are selected."""
    wanted = bool(config.getoption("--openfaas"))
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        (selected if (item.get_closest_marker("openfaas") is not None) == wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """MariaDB, Redis, MinIO and the gateway with the six functions, on free 127.0.0.1 ports."""
    from ocrstack.stack import LocalStack, StackPorts

    from tests.support import not_json_records

    local = LocalStack(tmp_path_factory.mktemp("stack"), StackPorts.free(), REPO_ROOT)
    try:
        local.start()
        yield local
    finally:
        local.stop()
    # Every line the run made the stack write, shutdown included, is one JSON record an operator's tools can read.
    bad = not_json_records(local.state_dir)
    assert not bad, f"{len(bad)} log lines are not JSON records:\n" + "\n".join(bad[:20])


Verapdf = Callable[..., subprocess.CompletedProcess[str]]


def verapdf_home() -> Path:
    """Where `local-stack/verapdf --fetch` puts veraPDF: <cache>/verapdf/<the version its pom names>."""
    from ocrstack.services import cache_dir

    pom = (REPO_ROOT / "local-stack" / "verapdf.pom.xml").read_text()
    found = re.search(r"<verapdf\.version>([^<]+)</verapdf\.version>", pom)
    assert found is not None, "local-stack/verapdf.pom.xml names no <verapdf.version>"
    return cache_dir() / "verapdf" / found.group(1)


@pytest.fixture(scope="session")
def verapdf() -> Verapdf:
    """`local-stack/verapdf FILE...` (PDF/A-2b): exit 0 compliant, 1 not, 2 not validated; its report on stdout.
    The bootstrap fetches it; missing, the test fails (it never skips)."""
    home = verapdf_home()
    assert (home / ".complete").is_file(), f"veraPDF is not in {home}: run ./local-stack/bootstrap"

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(REPO_ROOT / "local-stack" / "verapdf"), *map(str, files)], capture_output=True,
                              text=True, timeout=240)

    return run
