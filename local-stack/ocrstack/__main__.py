"""`ocrstack up|down|status|env|admin-key|gateway-password` (or `python -m ocrstack`): the local stack on its default
ports, data under one state folder."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ocrstack.services import ServiceError
from ocrstack.stack import RUNTIMES, LocalStack, StackPorts

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ocrstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env", "admin-key", "gateway-password"])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".state")
    parser.add_argument("--containers", action="store_true",
                        help="run the functions as their images under podman (default: OCR_RUNTIME, else local "
                             "processes); needs ./local-stack/bootstrap --containers")
    args = parser.parse_args(argv)
    runtime = "containers" if args.containers else os.environ.get("OCR_RUNTIME") or "processes"
    if runtime not in RUNTIMES:
        parser.error(f"OCR_RUNTIME must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    stack = LocalStack(args.state_dir, StackPorts.default(), REPO_ROOT, runtime=runtime)

    if args.command == "up":
        print(f"starting the local stack (state in {args.state_dir}, functions as {runtime}) ...", flush=True)
        # Services a previous `up` left running are not ours to stop when this one fails.
        was_running = any(stack.status().values())
        try:
            stack.start()
        except ServiceError as e:
            print(f"error: {e}", file=sys.stderr)
            if not was_running:
                try:
                    stack.stop()
                except ServiceError as stop_error:
                    print(f"error while stopping: {stop_error}", file=sys.stderr)
            return 1
        print("\nready. Every call needs an API key; the stack's admin key is in credentials.json:")
        print("  export KEY=$(./local-stack/admin-key)")
        print(f'  curl -H "Authorization: Bearer $KEY" -F file=@docs/examples/hello.png {stack.gateway_url}/function/upload')
        print("more keys: ./local-stack/ocr-pipeline keys create --name alice")
        print("faas-cli (user admin; /system/* needs it):")
        print(f"  ./local-stack/gateway-password | ./local-stack/faas-cli login --gateway {stack.gateway_url} "
              "--password-stdin")
        print(f"MinIO:  http://{stack.s3_endpoint} (console 127.0.0.1:{stack.ports.minio_console}); "
              f"credentials in {args.state_dir / 'credentials.json'}")
        print(f"logs:   {args.state_dir / 'logs'} and {args.state_dir / 'gateway' / 'logs'}")
        print("stop:   ./local-stack/down")
        return 0
    if args.command == "down":
        try:
            stack.stop()
        except ServiceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print("stopped")
        return 0
    if args.command == "admin-key":
        if "admin_api_key" not in stack.credentials:
            print("error: no admin key yet; run ./local-stack/up first", file=sys.stderr)
            return 1
        print(stack.admin_key)
        return 0
    if args.command == "gateway-password":
        # Generated with the other credentials on first use of the state folder; the gateway reads it at start.
        print(stack.credentials["gateway_password"])
        return 0
    if args.command == "env":
        # Shell exports of the functions' environment, for running a function or a script by hand.
        for key, value in stack.function_env().items():
            print(f"export {key}={json.dumps(value)}")
        return 0
    for name, running in stack.status().items():
        print(f"{name:8} {'running' if running else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
