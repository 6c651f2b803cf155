"""What each `ocr` command does, on the SDK; printing here, argument parsing and exit mapping in cli.py."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ocr_pipeline_client import batch, inputs, settings
from ocr_pipeline_client.errors import ClientError, Conflict, NotFound, OutputExists
from ocr_pipeline_client.files import refuse_existing, write_new
from ocr_pipeline_client.models import DocumentListItem
from ocr_pipeline_client.progress import display_for
from ocr_pipeline_client.sdk import Client, result_name


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
               "search": search, "reprocess": reprocess, "rm": rm}[args.command]
    return handler(client, args)


def _told_of_retry(code: str, seconds: float) -> None:
    print(f"ocr: {code}; retrying in {seconds:g} s", file=sys.stderr, flush=True)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _ids_only(args: argparse.Namespace) -> bool:
    """Whether stdout carries ids (or saved paths) alone, one a line: off a terminal (`job=$(ocr upload f)`,
    `ocr upload d | xargs ...`) or with -q. Everything else then goes to stderr."""
    return bool(args.quiet) or not sys.stdout.isatty()


# --- documents in and followed --------------------------------------------------------------------------------

def upload(client: Client, args: argparse.Namespace) -> int:
    skipped: list[Path] = []
    files = inputs.expand(args.files, skipped)  # every path checked before the first byte is sent
    if skipped:
        print(f"ocr: left out {len(skipped)} result(s) of an earlier run (*.ocr.pdf), e.g. {skipped[0]}",
              file=sys.stderr)
    if args.out:
        # Before the first byte is sent: a folder of results that cannot be saved costs no OCR.
        _refuse_taken_outputs(files, Path(args.out), args.outputs, args.force)
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
                print(job.job_id if _ids_only(args) else f"{job.job_id}  pending  {job.label}")
            if jobs:
                print(f"follow them with: ocr wait {' '.join(j.job_id for j in jobs)}", file=sys.stderr)
        return 1 if refused else 0
    failed = _follow(client, jobs, display, args)
    if args.json:
        _print_json([_job_json(j) for j in jobs] + [_refused_json(r) for r in refused])
    return 1 if refused or failed else 0


def _refuse_taken_outputs(files: list[inputs.Input], out: Path, outputs: tuple[str, ...], force: bool) -> None:
    """Every result the upload would save under `out`: none may replace a file (unless `force`), and none an
    input of this very upload, whatever the flags say."""
    paths = [path for name in batch.output_names(files) for path in batch.targets(out, name, outputs).values()]
    sources = {item.path.resolve() for item in files}
    for path in paths:
        if path.resolve() in sources:
            raise OutputExists(path, f"a result would be saved as {path}, one of the files being uploaded; "
                                     "choose another --out (--force never replaces an input)")
    refuse_existing(paths, force)


def wait(client: Client, args: argparse.Namespace) -> int:
    # Read once first: an unknown id fails here, before any bar is drawn, and bars show file names. A document
    # id becomes its current job's id, so every line after this names the job.
    jobs: dict[str, batch.Tracked] = {}
    for given in args.jobs:
        current = client.status(given)
        jobs.setdefault(current.job_id, batch.Tracked(current.job_id, current.job_id, label=current.filename,
                                                      document_id=current.document_id))
    display = display_for()
    failed = _follow(client, list(jobs.values()), display, args, names_from_service=True)
    if args.json:
        _print_json([_job_json(j) for j in jobs.values()])
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
                batch.save_outputs(client, job, out, args.outputs, args.force)
            except (ClientError, OSError) as e:
                # One result that cannot be written must not stop the others being followed and saved.
                unsaved.add(job.job_id)
                display.note(f"{job.status.filename}: completed, but not saved: {e}")
                return
            display.note(f"{job.status.filename}: completed, saved {', '.join(job.saved.values())}")
        if job.status.status == "completed":
            for warning in job.status.warnings:
                display.note(f"{job.status.filename}: warning: {warning.code}: {warning.message}")

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
        ids_only = _ids_only(args)
        for job in jobs:
            assert job.status is not None
            print(f"{job.job_id}  {job.status.status:10}  {_pages(job.status.pages_done, job.status.page_count)}  "
                  f"{job.status.filename}", file=sys.stderr if ids_only else sys.stdout)
        if ids_only:
            for job in jobs:
                print(job.job_id)
    return bool(unsaved) or any(j.status is None or j.status.status != "completed" for j in jobs)


def _resume_options(args: argparse.Namespace) -> str:
    """What `ocr wait` needs to finish the interrupted run's job: the same output folder, outputs and --force."""
    if not args.out:
        return ""
    names = {output: name for name, output in batch.OUTPUT_NAMES.items()}
    chosen = ",".join(names[o] for o in args.outputs)
    return (f" --out {shlex.quote(args.out)}" + ("" if chosen == "text,pdf,hocr" else f" --outputs {chosen}")
            + (" --force" if args.force else ""))


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
    elif args.quiet:
        print(current.status)
    else:
        print(f"job       {current.job_id}\ndocument  {current.document_id}\nfile      {current.filename} "
              f"({current.content_type}, {current.size_bytes} bytes, lang {current.lang})\n"
              f"status    {current.status}, {_pages(current.pages_done, current.page_count)}")
        if current.error:
            print(f"error     {current.error.code}: {current.error.message or ''}")
        for warning in current.warnings:
            print(f"warning   {warning.code}: {warning.message}")
        if current.callback:
            answer = current.callback.last_code if current.callback.last_code is not None else "no answer"
            print(f"callback  {current.callback.state}, {current.callback.attempts} attempt(s), last {answer}")
    return 1 if current.status == "failed" else 0


def text(client: Client, args: argparse.Namespace) -> int:
    if args.output:
        refuse_existing([Path(args.output)], args.force)  # before the text is fetched
    if args.json:
        # The status answer holds the text and names the job (the id given may be a document's).
        current = client.status(args.job)
        if current.status != "completed":
            raise Conflict(f"job {current.job_id} is {current.status}; its text exists once it is completed",
                           "job_not_completed", 409)
        body = current.text or ""
    else:
        body = client.text(args.job)
    if args.output:
        path = Path(args.output)
        written = write_new(path, lambda f: f.write(body.encode("utf-8")), args.force)
        if args.json:
            _print_json({"job_id": current.job_id, "document_id": current.document_id, "path": str(path),
                         "bytes": written})
        else:
            _saved(args, path, written)
    elif args.json:
        _print_json({"job_id": current.job_id, "document_id": current.document_id, "text": body})
    else:
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
    return 0


def get(client: Client, args: argparse.Namespace) -> int:
    current = client.status(args.job)
    if args.output_file == "-":
        client.download(current, args.output, sys.stdout.buffer)
        return 0
    path = Path(args.output_file or result_name(current.filename, batch.SUFFIXES[args.output]))
    saved = client.download(current, args.output, path, overwrite=args.force)
    # -o naming a folder saves in it, under the name the service gives.
    path, written = saved.path or path, saved.size
    if args.json:
        _print_json({"job_id": current.job_id, "document_id": current.document_id, "path": str(path),
                     "bytes": written})
    else:
        _saved(args, path, written)
    return 0


def _saved(args: argparse.Namespace, path: Path, written: int) -> None:
    if _ids_only(args):
        print(path)
    else:
        print(f"saved {path} ({written} bytes)")


def reprocess(client: Client, args: argparse.Namespace) -> int:
    try:
        accepted = client.reprocess(args.document, lang=args.lang)
    except NotFound:
        # The id may be one of the document's jobs (as upload, wait and status print them).
        document_id = _document_of_job(client, args.document)
        if document_id is None:
            raise
        accepted = client.reprocess(document_id, lang=args.lang)
    if args.json:
        _print_json(accepted.raw)
    else:
        print(accepted.job_id if _ids_only(args) else
              f"{accepted.job_id}  pending  document {accepted.document_id}")
        print(f"follow it with: ocr wait {accepted.job_id}", file=sys.stderr)
    return 0


def _document_of_job(client: Client, job_id: str) -> str | None:
    """The document a job id belongs to, or None when no job of the key has that id."""
    try:
        current = client.status(job_id)
    except NotFound:
        return None
    return current.document_id if current.job_id == job_id else None


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
    elif args.quiet:
        for item in items:
            print(item.document_id)
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
            owner = _document_of_job(client, document_id)
            hint = f"; {document_id} is a job of document {owner} (ocr rm {owner} deletes it)" if owner else ""
            print(f"ocr: no document {document_id}{hint}", file=sys.stderr)
            failed += 1
            continue
        except ClientError as e:
            if len(args.documents) == 1:
                raise
            print(f"ocr: {document_id}: {e.code}: {e.message}", file=sys.stderr)
            failed += 1
            continue
        if not args.json:
            print(document_id if _ids_only(args) else f"deleted {document_id}")
    if args.json:
        _print_json({"deleted": len(args.documents) - failed, "failed": failed})
    return 1 if failed else 0
