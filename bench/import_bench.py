"""What each function costs to start: seconds to import its handler, and the process's RSS after it.

Run from the repository root: ./local-stack/bootstrap && .venv/bin/python -m bench.import_bench [--rounds 5]

Each round imports one handler in a fresh interpreter (as a cold function replica does) and reports
the best of the rounds, printed as measured. A function that never runs OCR should not pay for
loading the OCR engine (pikepdf, Pillow).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PROBE = """
import importlib.util, json, resource, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
took = time.perf_counter() - started
engine = sorted(m for m in ("pikepdf", "PIL") if m in sys.modules)
print(json.dumps({"seconds": took, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "engine": engine}))
"""


def measure(handler: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(handler)], capture_output=True, text=True, check=True,
                         cwd=REPO)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'function':14}{'import s':>10}{'RSS MiB':>10}  OCR engine modules loaded", flush=True)
    for handler in sorted(REPO.glob("functions/*/handler.py")):
        runs = [measure(handler) for _ in range(args.rounds)]
        best = min(runs, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
        rss = min(float(r["rss_mib"]) for r in runs)  # type: ignore[arg-type]
        print(f"{handler.parent.name:14}{float(best['seconds']):>10.3f}{rss:>10.1f}  "  # type: ignore[arg-type]
              f"{', '.join(best['engine']) or '-'}", flush=True)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
