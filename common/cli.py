"""`ocr-pipeline` (or `python -m common`): the operator's commands (init, API keys, retention), run against the
configured MySQL, Redis and MinIO."""

from __future__ import annotations

import argparse
import json
import sys
import time

from common.adapters import db, storage
from common.config import Settings, get_settings
from common.errors import PipelineError
from common.logging import get_logger, setup
from common.models import Role
from common.rules import apikeys, documents, sweep

# MinIO's ARN for the webhook target `OCR` in the default region (arn:minio:sqs:<region>:<target id>:webhook).
DEFAULT_WEBHOOK_ARN = "arn:minio:sqs::OCR:webhook"
FIRST_ADMIN_KEY = "keys create --name admin --role admin"

log = get_logger()


def initialise(settings: Settings, webhook_arn: str = DEFAULT_WEBHOOK_ARN) -> str:
    """Create or upgrade the schema, then the bucket and its notification rules; safe to repeat.

    Returns what happened to the schema, in words."""
    change = db.create_schema(settings)
    storage.ensure_bucket(settings, webhook_arn)
    return change.describe()


def _init(args: argparse.Namespace) -> int:
    settings = get_settings()
    print(f"init: schema {initialise(settings, args.webhook_arn)}", flush=True)
    print(f"init: bucket {settings.s3_bucket} notifies {args.webhook_arn} of objects created under "
          f"{settings.inbox_prefix} and {settings.upload_prefix}", flush=True)
    admins = [k.id for k in apikeys.list_keys(settings) if k.role == Role.ADMIN.value and k.revoked_at is None]
    print(f"init: active admin keys: {', '.join(admins)}" if admins else
          f"init: no admin key yet; make the first one (its key is shown once) with: {args.prog} {FIRST_ADMIN_KEY}")
    return 0


def _keys(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.action == "create":
        created = apikeys.create(settings, args.name, Role(args.role))
        if args.json:
            print(json.dumps({**created.info.to_dict(), "key": created.token}))
        else:
            print(f"created {created.info.role} key {created.info.id} ({created.info.name})")
            print(f"key: {created.token}")
            print("This is the only time the key is shown; store it now.", file=sys.stderr)
        return 0
    if args.action == "list":
        keys = [k.to_dict() for k in apikeys.list_keys(settings)]
        if args.json:
            print(json.dumps(keys))
        else:
            for k in keys:
                state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
                print(f"{k['id']}  {k['role']:5}  {state:28}  last used {k['last_used_at'] or 'never':20}  {k['name']}")
        return 0
    if not apikeys.revoke(settings, args.key_id):
        print(f"error: no active key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


def _retention(args: argparse.Namespace) -> int:
    settings = get_settings()
    while True:
        try:
            removed = documents.expire(settings)
            # Log records, not sentences: with --every this is a service whose log an operator follows.
            log.info("retention.expired", removed=removed, retention_days=settings.retention_days,
                     enabled=settings.retention_days > 0)
            swept = sweep.sweep(settings)
            log.info("sweep.done", withdrawn=swept.withdrawn, failed=swept.failed, resubmitted=swept.resubmitted,
                     chunks_resubmitted=swept.chunks_resubmitted, called_back=swept.called_back)
        except PipelineError as e:
            if not args.every:
                raise
            log.warning("retention.failed", error_code=e.code, error=str(e), retry_in_seconds=args.every)
        if not args.every:
            return 0
        time.sleep(args.every)


def main(argv: list[str] | None = None, prog: str = "ocr-pipeline") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create or upgrade the schema, the bucket and its notification rules")
    init.add_argument("--webhook-arn", default=DEFAULT_WEBHOOK_ARN, metavar="ARN",
                      help="MinIO's webhook target for new objects (default %(default)s; with MINIO_REGION set, "
                           "the region goes between the first colons)")
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="a new key; its secret is printed once")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.USER.value)
    create.add_argument("--json", action="store_true")
    listing = key_actions.add_parser("list", help="every key, with its state and last use (never the secret)")
    listing.add_argument("--json", action="store_true")
    revoke = key_actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    retention = commands.add_parser(
        "retention", help="delete documents older than RETENTION_DAYS, and settle jobs nothing runs any more "
                          "(unfinished for SWEEP_AFTER_SECONDS)")
    retention.add_argument("--every", type=float, default=0, metavar="SECONDS",
                           help="run again every SECONDS (the scheduler the local stack and compose start)")
    args = parser.parse_args(argv)
    args.prog = prog
    setup("cli")
    run = {"init": _init, "keys": _keys, "retention": _retention}[args.command]
    try:
        return run(args)
    except PipelineError as e:
        print(f"error: {e.code}: {e}", file=sys.stderr)  # an operator sees the detail too
        return 2 if e.code == "bad_request" else 1


if __name__ == "__main__":
    sys.exit(main())
