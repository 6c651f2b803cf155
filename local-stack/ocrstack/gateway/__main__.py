"""Start the gateway: `python -m ocrstack.gateway --port 8080 --redis-url URL --stack stack.yml ...`."""

from __future__ import annotations

import argparse
import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import common

from aiohttp import web

from common.logging import get_logger, setup
from ocrstack.gateway.app import GatewayApp
from ocrstack.gateway.callbacks import CallbackRules
from ocrstack.gateway.edge import ConnectionRules, serve
from ocrstack.gateway.intake import BodyRules
from ocrstack.gateway.provider import FunctionSpec, FunctionStartError, Provider, load_stack
from ocrstack.gateway.queue import AsyncQueue

log = get_logger()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ocrstack.gateway", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--stack", type=Path, help="faas-cli stack file whose functions run as local processes")
    p.add_argument("--upstream", action="append", default=[], metavar="NAME=URL",
                   help="route a function to a running server instead (containers); repeatable")
    p.add_argument("--runtime", choices=Provider.RUNTIMES, default="processes",
                   help="processes: each handler as a local functions-framework process (default); containers: "
                        "each function as its stack file image under podman, behind of-watchdog")
    p.add_argument("--stack-id", default="local",
                   help="names and labels this gateway's containers (ocr-<function>-<stack id>)")
    p.add_argument("--function-env", type=Path, help="JSON object of env vars added to every local function")
    p.add_argument("--repo-root", type=Path,
                   help="working directory of the functions, where they import `common` from, and of "
                        "docs/openapi.yaml (default: the checkout `common` is installed from, else the current "
                        "directory)")
    p.add_argument("--state-dir", type=Path, default=Path(".state/gateway"))
    p.add_argument("--queue-workers", type=int,
                   help="invocations run side by side (default: 2, or more when a function starts with more "
                        "replicas, so each can be busy); 0 accepts invocations without running them")
    p.add_argument("--queue-max-attempts", type=int, default=8)
    p.add_argument("--queue-lanes", default="uploads,chunks",
                   help="lanes besides the default one, taken in turn (comma-separated); an async call names its "
                        "lane in X-Queue-Lane (default: uploads,chunks)")
    p.add_argument("--queue-backoff-base", type=float, default=1.0, help="seconds before the first retry")
    p.add_argument("--max-body-bytes", type=int, default=200 * 1024 * 1024,
                   help="largest request body; a function whose stack file names a body-limit setting gets that "
                        "plus a form's room")
    p.add_argument("--body-min-rate", type=float, default=8 * 1024,
                   help="bytes per second a request body must average after --body-grace seconds, else 408")
    p.add_argument("--body-grace", type=float, default=10.0, help="seconds before --body-min-rate applies")
    p.add_argument("--body-idle", type=float, default=10.0,
                   help="longest wait, in seconds, for the next bytes of a request body, else 408")
    p.add_argument("--async-max-body-bytes", type=int, default=1024 * 1024,
                   help="largest body of an async call, which is kept in Redis until it has run (default 1 MiB); "
                        "a verified caller of a function with a body-limit setting may send that plus a form's room")
    p.add_argument("--open-queue-bytes", type=int, default=4 * 1024 * 1024,
                   help="bytes of queued async calls without a verified caller (functions that check no key), "
                        "all together; past it such calls get 503 queue_full (default 4 MiB)")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection has to send a request's headers, from its opening or from the "
                        "previous answer; also how long an idle keep-alive connection is kept")
    p.add_argument("--max-connections-per-client", type=int, default=64,
                   help="connections one client address (an IPv6 /64) may hold at once")
    p.add_argument("--max-connections", type=int, default=256,
                   help="connections all counted clients may hold at once (each costs at most about 192 KiB of "
                        "memory while its body is received)")
    p.add_argument("--connection-limit-exempt", default="127.0.0.1/32,::1/128",
                   help="networks whose connections are not counted (the functions and MinIO on this machine)")
    p.add_argument("--queue-reclaim-idle", type=float, default=30.0,
                   help="seconds after which an invocation whose worker stopped touching it is taken over")
    p.add_argument("--trusted-proxies", default="",
                   help="comma-separated networks whose X-Forwarded-For is passed on (default: none)")
    p.add_argument("--callback-allowed-hosts", default="",
                   help="hosts or networks an X-Callback-Url may name although private or loopback (comma-separated)")
    p.add_argument("--basic-auth-user", help="with --basic-auth-password-file: /system/* needs HTTP basic auth")
    p.add_argument("--basic-auth-password-file", type=Path,
                   help="file holding the password (mode 0600: refused if others may read it)")
    p.add_argument("--logs-follow-timeout", type=float, default=300.0,
                   help="seconds a followed /system/logs request lasts at most")
    return p.parse_args(argv)


def function_specs(args: argparse.Namespace) -> dict[str, FunctionSpec]:
    """The functions the stack file (and --upstream) declare; read at start and again for every deployment."""
    specs = load_stack(args.stack) if args.stack else {}
    for item in args.upstream:
        name, _, url = item.partition("=")
        spec = specs.get(name) or FunctionSpec(name=name, handler=None)
        spec.upstream = url.rstrip("/")
        specs[name] = spec
    return specs


def basic_auth(args: argparse.Namespace) -> tuple[str, str] | None:
    """The user and password /system/* requires, or None (both options absent). The password file must be
    private to its owner, as OpenFaaS's secrets are."""
    user, path = args.basic_auth_user, args.basic_auth_password_file
    if user is None and path is None:
        return None
    if not user or path is None:
        raise SystemExit("--basic-auth-user and --basic-auth-password-file go together")
    try:
        mode = path.stat().st_mode
        password = path.read_text().strip()
    except OSError as e:
        raise SystemExit(f"cannot read the basic auth password file: {e}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(f"{path} may be read by others (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
    if not password:
        raise SystemExit(f"{path} holds no password")
    return user, password


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup("gateway")
    if args.stack is None and not args.upstream:
        raise SystemExit("no functions: give --stack or --upstream")
    specs = function_specs(args)
    auth = basic_auth(args)
    # Functions import `common` as in their image, so they run from the folder that holds it: the checkout
    # of an editable install, or the working directory of an image where the package is installed.
    checkout = Path(common.__file__).resolve().parent.parent
    default = checkout if (checkout / "stack.yml").is_file() else Path.cwd()
    repo_root = (args.repo_root or default).resolve()
    provider = Provider(specs, repo_root, args.function_env, args.state_dir / "logs",
                        declared=lambda: function_specs(args), runtime=args.runtime, stack=args.stack_id)
    queue = AsyncQueue(args.redis_url, max_attempts=args.queue_max_attempts,
                       backoff_base=args.queue_backoff_base, reclaim_idle=args.queue_reclaim_idle,
                       lanes=tuple(lane.strip() for lane in args.queue_lanes.split(",") if lane.strip()))
    gateway = GatewayApp(provider, queue, args.max_body_bytes, auth, openapi=repo_root / "docs" / "openapi.yaml",
                         logs_follow_timeout=args.logs_follow_timeout,
                         trusted_proxies=tuple(p.strip() for p in args.trusted_proxies.split(",") if p.strip()),
                         callback_rules=CallbackRules.parse(args.callback_allowed_hosts),
                         body_rules=BodyRules(args.max_body_bytes, min_rate=args.body_min_rate,
                                              grace=args.body_grace, idle=args.body_idle),
                         async_max_body=args.async_max_body_bytes, open_queue_budget=args.open_queue_bytes)
    rules = ConnectionRules(header_timeout=args.header_timeout, per_client=args.max_connections_per_client,
                            total=args.max_connections,
                            exempt=tuple(n.strip() for n in args.connection_limit_exempt.split(",") if n.strip()))
    app = gateway.build()

    async def running(_app: web.Application) -> AsyncIterator[None]:
        """Start-up, then (after the yield, or when start-up fails half-way) the one teardown of what started."""
        supervisor: asyncio.Task[None] | None = None
        try:
            await gateway.open()
            await queue.ensure_group()
            await provider.start()
            supervisor = asyncio.create_task(provider.supervise())
            workers = args.queue_workers
            if workers is None:
                workers = max([2, *(len(d.replicas) for d in provider.functions.values())])
            queue.start(workers, gateway.run_queued, gateway.send_callback)
            gateway.ready = True
            log.info("gateway.started", host=args.host, port=args.port, functions=sorted(specs),
                     queue_workers=workers, system_auth=auth is not None, runtime=args.runtime)
            yield
        finally:
            gateway.ready = False
            # Unfinished queue entries stay pending in Redis and are taken up again at the next start.
            await queue.stop()
            if supervisor is not None:
                supervisor.cancel()
            provider.stop()  # idempotent; also what a start-up that failed after spawning functions left
            await gateway.close()
            log.info("gateway.stopped")

    async def on_shutdown(_app: web.Application) -> None:
        gateway.stopping = True  # followed logs end, so the shutdown does not wait for them

    app.cleanup_ctx.append(running)
    app.on_shutdown.append(on_shutdown)
    try:
        asyncio.run(serve(app, args.host, args.port, rules, shutdown_timeout=5))
    except FunctionStartError as e:
        log.error("gateway.start_failed", error=str(e))
        raise SystemExit(1) from e

if __name__ == "__main__":
    main()
