"""Container health: the watchdog's lock file is present and functions-framework answers behind it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request


def main() -> int:
    # The watchdog writes its lock file when it starts listening and removes it on SIGTERM.
    if subprocess.run(["fwatchdog", "--run-healthcheck"], capture_output=True, check=False).returncode != 0:
        print("of-watchdog lock file missing", file=sys.stderr)
        return 1
    # functions-framework answers /robots.txt with 404 itself, without calling the handler (no
    # database or object store touched), so any HTTP answer means the upstream server is up.
    url = os.environ.get("upstream_url", "http://127.0.0.1:5000").rstrip("/") + "/robots.txt"
    try:
        urllib.request.urlopen(url, timeout=3).close()
    except urllib.error.HTTPError:
        return 0
    except OSError as e:
        print(f"functions-framework not answering on {url}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
