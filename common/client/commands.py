"""What each `ocr` command does, on the SDK; printing here, argument parsing and exit mapping in cli.py."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.client import batch, inputs, settings
from common.client.errors import ClientError, NotFound
from common.client.models import DocumentListItem
from common.client.progress import display_for
from common.client.sdk import Client


class Interrupted(Exception):
    """Ctrl-C while following jobs: they go on in the service; cli.py prints how to pick them up."""

    def __init__(self, job_ids: list[str], resume_options: str) -> None:
        super().__init__("interrupted")
        self.job_ids = job_ids
        self.resume_options = resume_options


def run(args: argparse.Namespace) -> int:
    config = settings.load(args.url)
    client = Client(config.url, config.api_key, on_retry=_told_of_retry)
    handler = {"upload": upload, "status": status, "wait": wait, "text": text, "get": get, "ls": ls,
               "search": search, "rm": rm}[args.command]
    return handler(client, args)


def _told_of_retry(code: str, seconds: float) -> None:
    print(f"ocr: {code}; retrying in {seconds:g} s", file=sys.stderr, flush=True)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# --- documents in and followed --------------------------------------------------------------------------------

def upload(client: Client, args: argparse.Namespace) -> int:
    files = inputs.expand(args.files)  # every path checked before the first byte is sent
    display = display_for()
    sent: list[str] = []

    def accepted(item: inputs.Input, reply: Any) -> None:
        sent.append(reply.job_id)
        if not args.json:
            display.note(f"uploaded {item.path} -> job {reply.job_id}")

    try:
        jobs, refused = batch.upload_all(client, files, args.lang, args.parallel, on_accepted=accepted,
                                         callback_url=args.callback_url, output=args.output)
    except KeyboardInterrupt:
        display.close()
        if not sent:
            raise
        raise Interrupted(sent, _resume_options(args)) from None
    for r in refused:
        display.note(f"{r.input.path}: refused: {r.error.code}: {r.error.message}")
    if not (args.wait or args.out):
        display.close()
        if args.json:
            _print_json([_job_json(j) for j in jobs] + [_refused_json(r) for r in refused])
        else:
            for job in jobs:
                print(f"{job.job_id}  pending  {job.label}")
            if jobs:
                print(f"follow them with: ocr wait {' '.join(j.job_id for j in jobs)}", file=sys.stderr)
        return 1 if refused else 0
    failed = _follow(client, jobs, display, args)
    if args.json:
        _print_json([_job_json(j) for j in jobs] + [_refused_json(r) for r in refused])
    return 1 if refused or failed else 0


def wait(client: Client, args: argparse.Namespace) -> int:
    # Read once first: an unknown id fails here, before any bar is drawn, and bars show file names.
    jobs = [batch.Tracked(job_id, job_id, label=client.status(job_id).filename) for job_id in args.jobs]
    display = display_for()
    failed = _follow(client, jobs, display, args, names_from_service=True)
    if args.json:
        _print_json([_job_json(j) for j in jobs])
    return 1 if failed else 0


def _follow(client: Client, jobs: list[batch.Tracked], display: Any, args: argparse.Namespace,
            names_from_service: bool = False) -> bool:
    """Wait for every job with progress, save outputs as each completes; True if any did not complete."""
    out = Path(args.out) if args.out else None
    taken: set[str] = set()
    unsaved: set[str] = set()

    def finished(job: batch.Tracked) -> None:
        assert job.status is not None
        if names_from_service:
            job.name = _unique_name(job, taken)
        if job.status.status == "failed":
            error = job.status.error
            display.note(f"{job.status.filename}: failed: {error.code if error else 'failed'}: "
                         f"{(error.message if error else None) or ''}")
        elif out is not None:
            try:
                batch.save_outputs(client, job, out, args.outputs)
            except (ClientError, OSError) as e:
                # One result that cannot be written must not stop the others being followed and saved.
                unsaved.add(job.job_id)
                display.note(f"{job.status.filename}: completed, but not saved: {e}")
                return
            display.note(f"{job.status.filename}: completed, saved {', '.join(job.saved.values())}")

    try:
        batch.wait_all(client, jobs, display, timeout=args.timeout, on_final=finished)
    except KeyboardInterrupt:
        display.close()
        left = [j.job_id for j in jobs if j.status is None or not j.status.is_final]
        raise Interrupted(left or [j.job_id for j in jobs], _resume_options(args)) from None
    display.close()
    unfinished = [j for j in jobs if j.status is None or not j.status.is_final]
    if unfinished:
        print(f"ocr: still running after {args.timeout:g} s: ocr wait {' '.join(j.job_id for j in unfinished)}",
              file=sys.stderr)
    if not args.json:
        for job in jobs:
            assert job.status is not None
            print(f"{job.job_id}  {job.status.status:10}  {_pages(job.status.pages_done, job.status.page_count)}  "
                  f"{job.status.filename}")
    return bool(unsaved) or any(j.status is None or j.status.status != "completed" for j in jobs)


def _resume_options(args: argparse.Namespace) -> str:
    """What `ocr wait` needs to finish the interrupted run's job: the same output folder and outputs."""
    if not args.out:
        return ""
    names = {output: name for name, output in batch.OUTPUT_NAMES.items()}
    chosen = ",".join(names[o] for o in args.outputs)
    return f" --out {shlex.quote(args.out)}" + ("" if chosen == "text,pdf,hocr" else f" --outputs {chosen}")


def _unique_name(job: batch.Tracked, taken: set[str]) -> str:
    assert job.status is not None
    name = Path(job.status.filename).name
    stem = str(Path(name).with_suffix("")) if name not in ("", ".", "..") else "document"
    if stem in taken:
        stem = f"{stem}-{job.job_id[:8]}"
    taken.add(stem)
    return stem


def _pages(done: int, count: int | None) -> str:
    return f"{done}/{count if count is not None else '?'} pages"


def _job_json(job: batch.Tracked) -> dict[str, Any]:
    if job.status is None:
        return {"job_id": job.job_id, "document_id": job.document_id, "name": job.name, "status": "pending"}
    raw = {k: v for k, v in job.status.raw.items() if k != "text"}
    return {**raw, "name": job.name, "saved": job.saved}


def _refused_json(refused: batch.Refused) -> dict[str, Any]:
    return {"file": str(refused.input.path), "status": "refused",
            "error": {"code": refused.error.code, "message": refused.error.message}}


# --- one job ----------------------------------------------------------------------------------------------------

def status(client: Client, args: argparse.Namespace) -> int:
    current = client.status(args.job)
    if args.json:
        _print_json({k: v for k, v in current.raw.items() if k != "text"})
    else:
        print(f"job       {current.job_id}\ndocument  {current.document_id}\nfile      {current.filename} "
              f"({current.content_type}, {current.size_bytes} bytes, lang {current.lang})\n"
              f"status    {current.status}, {_pages(current.pages_done, current.page_count)}")
        if current.error:
            print(f"error     {current.error.code}: {current.error.message or ''}")
        if current.callback:
            answer = current.callback.last_code if current.callback.last_code is not None else "no answer"
            print(f"callback  {current.callback.state}, {current.callback.attempts} attempt(s), last {answer}")
    return 1 if current.status == "failed" else 0


def text(client: Client, args: argparse.Namespace) -> int:
    body = client.text(args.job)
    if args.output:
        Path(args.output).write_text(body, encoding="utf-8")
    elif args.json:
        _print_json({"job_id": args.job, "text": body})
    else:
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
    return 0


def get(client: Client, args: argparse.Namespace) -> int:
    current = client.status(args.job)
    if args.output_file == "-":
        client.download(current, args.output, sys.stdout.buffer)
        return 0
    suffix = batch.SUFFIXES[args.output]
    default = (str(Path(Path(current.filename).name).with_suffix("")) or "document") + suffix
    path = Path(args.output_file or default)
    written = client.download(current, args.output, path)
    if args.json:
        _print_json({"job_id": current.job_id, "path": str(path), "bytes": written})
    else:
        print(f"saved {path} ({written} bytes)")
    return 0


# --- the library ------------------------------------------------------------------------------------------------

def ls(client: Client, args: argparse.Namespace) -> int:
    return _listing(client, args, query=None)


def search(client: Client, args: argparse.Namespace) -> int:
    return _listing(client, args, query=args.query)


def _listing(client: Client, args: argparse.Namespace, query: str | None) -> int:
    filters = {"status": args.status, "content_type": args.content_type, "filename": args.filename,
               "date_from": args.date_from, "date_to": args.date_to, "owner": args.owner, "q": query,
               "sort": "created_at_asc" if args.oldest_first else None}
    items: Iterable[DocumentListItem]
    more = False
    if args.all:
        items = client.iter_documents(page_size=min(args.limit, 100), **filters)
    else:
        page = client.list(limit=min(args.limit, 100), **filters)
        items, more = page.items, page.next_cursor is not None
        if page.ignored_terms:
            print(f"ocr: not searchable (too short or too common): {', '.join(page.ignored_terms)}", file=sys.stderr)
    if args.json:
        _print_json([item.raw for item in items])
    else:
        for item in items:
            print(f"{item.document_id}  {item.status:10}  {item.page_count if item.page_count is not None else '?':>4}"
                  f" p  {item.created_at[:19]}  {item.filename}")
            if item.snippet:
                print(f"    {' '.join(item.snippet.split())}")
    if more:
        print("ocr: more documents follow: --all lists every one", file=sys.stderr)
    return 0


def rm(client: Client, args: argparse.Namespace) -> int:
    failed = 0
    for document_id in args.documents:
        try:
            client.delete(document_id)
        except NotFound:
            print(f"ocr: no document {document_id}", file=sys.stderr)
            failed += 1
            continue
        except ClientError as e:
            if len(args.documents) == 1:
                raise
            print(f"ocr: {document_id}: {e.code}: {e.message}", file=sys.stderr)
            failed += 1
            continue
        if not args.json:
            print(f"deleted {document_id}")
    if args.json:
        _print_json({"deleted": len(args.documents) - failed, "failed": failed})
    return 1 if failed else 0
