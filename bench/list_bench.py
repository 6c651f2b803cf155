"""List queries on a large table: first page, deep offset against cursor at the same depth, filters, search.

Run from the repository root: .venv/bin/python -m bench.list_bench [--documents 100000] [--runs 30]

Starts its own MariaDB (free port, temporary folder, stopped at the end), creates the schema, bulk-loads
documents + jobs with OCR-like text (LOAD DATA, indexes built afterwards: 1M documents in about 2 to 6 minutes
on 2 cores), then times `common.listing.list_documents` in this process (query parsing, SQL and shaping the
answer; no HTTP). Offset-mode rows include the COUNT behind `total`, as the function answers them; the
COUNT is also timed alone. Each query's figures are printed as they are measured, with the access plan
(EXPLAIN's key) of its page query.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects import mysql

from common.adapters.db import Document, Job, create_schema, dispose_engines, session_scope
from common.config import Settings, load_settings
from common.models import TRUSTED, JobStatus
from common.rules.listing import ListQuery, count_statement, list_documents, page_statement
from common.rules.listing.page import TOTAL_CAP
from common.rules.listing.recent import WANTED_PER_WINDOW, WINDOW, search_recent
from ocrstack.services import MariaDB, free_port

START = datetime(2025, 1, 1)
# Invoice and letter vocabulary, so the full-text index has a realistic spread of common and rare words.
COMMON_WORDS = (
    "invoice total amount due date payment account customer number order item quantity price tax net "
    "gross delivery address street city phone email reference page dear sincerely regards contract "
    "agreement service period balance credit debit bank transfer receipt paid thank you please note"
).split()
RARE_WORD = "reimbursement"  # in about 1 % of the texts
SEARCH_SHARE = 0.01
CONTENT_TYPES = (("application/pdf", 50), ("image/png", 25), ("image/jpeg", 15), ("image/tiff", 10))
STATUSES = ((JobStatus.COMPLETED, 85), (JobStatus.FAILED, 5), (JobStatus.PENDING, 5), (JobStatus.PROCESSING, 5))
# Owners: a user key that uploaded four documents in five (every user key's listing filters by its owner), and one
# that uploaded the rest. By position, so the random draws, and with them the rest of the data, stay as they were.
OWNERS = ("3f9c2a7b1d04", "0123456789ab")


def weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def ocr_text(rng: random.Random) -> str:
    words = [rng.choice(COMMON_WORDS) if rng.random() < 0.8 else str(rng.randint(10, 99999))
             for _ in range(rng.randint(40, 120))]
    if rng.random() < SEARCH_SHARE:
        words.insert(rng.randrange(len(words)), RARE_WORD)
    return " ".join(words)


def load(settings: Settings, database: MariaDB, folder: Path, documents: int) -> None:
    """documents + jobs by LOAD DATA, secondary indexes built afterwards; about one timestamp in ten shared by two
    rows (tie-breaking).

    Rows go to tab-separated files in primary-key order, the indexes (full-text included) are dropped, the server
    reads the files, and each table's indexes are built in one ALTER from sorted runs: a fraction of the time
    of row-by-row inserts into every index (1M documents: minutes instead of 13).
    """
    rng = random.Random(7)
    moment = START
    started = time.monotonic()
    docs: list[tuple[Any, ...]] = []
    jobs: list[tuple[Any, ...]] = []
    for n in range(documents):
        if rng.random() > 0.1:
            moment += timedelta(seconds=rng.randint(1, 600), microseconds=rng.randint(0, 999_999))
        doc_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
        kind = weighted(rng, CONTENT_TYPES)
        status = weighted(rng, STATUSES)
        stamp = moment.isoformat(sep=" ", timespec="microseconds")
        owner = OWNERS[1] if n % 5 == 4 else OWNERS[0]
        docs.append((doc_id, f"scan-{n:06d}.{kind.split('/')[1]}", kind, rng.randint(10_000, 5_000_000), "documents",
                     f"uploads/{doc_id}/scan-{n:06d}", "upload", uuid.uuid4().hex + uuid.uuid4().hex, stamp, job_id,
                     owner))
        jobs.append((job_id, doc_id, status.value, "eng", 1, 1, 3, 1, 1,
                     ocr_text(rng) if status == JobStatus.COMPLETED else None, stamp, stamp, stamp, 1, owner))
        if (n + 1) % 50_000 == 0:
            print(f"\r  generated {n + 1:>7} / {documents} ({time.monotonic() - started:.0f} s)", end="", flush=True)
    print()
    tables = {
        "documents": (Document, docs, "id, filename, content_type, size_bytes, bucket, object_key, source, "
                      "source_hash, created_at, job_id, owner_id"),
        "jobs": (Job, jobs, "id, document_id, status, lang, attempts, version, max_attempts, page_count, "
                 "pages_done, text, created_at, document_created_at, updated_at, shown, document_owner_id"),
    }
    for name, (model, rows, columns) in tables.items():
        table = model.metadata.tables[name]
        rows.sort(key=lambda row: row[0])  # primary-key order: InnoDB appends pages instead of splitting them
        path = folder / f"{name}.tsv"
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
        rows.clear()
        # Every secondary index but the foreign key's (jobs.document_id) is built after the load.
        built = [index for index in table.indexes if index.name != "ix_jobs_document_id"]
        unique = [c.name for c in table.columns if c.unique]
        drops = [f"DROP INDEX {index.name}" for index in built] + [f"DROP INDEX {column}" for column in unique]
        adds = [_index_clause(index) for index in built] + [f"ADD UNIQUE INDEX {c} ({c})" for c in unique]
        step = time.monotonic()
        database.root_sql(
            f"ALTER TABLE `{database.database}`.{name} {', '.join(drops)};"
            f"SET foreign_key_checks = 0; SET unique_checks = 0;"
            f"LOAD DATA INFILE '{path}' INTO TABLE `{database.database}`.{name} CHARACTER SET utf8mb4 "
            f"FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({columns});"
        )
        loaded = time.monotonic()
        print(f"  {name}: {documents} rows read in {loaded - step:.0f} s", flush=True)
        # The full-text index in a statement of its own, after the others: built in the same ALTER as them,
        # MariaDB 10.11 left it empty here (every MATCH found nothing).
        plain = [clause for clause in adds if "FULLTEXT" not in clause]
        fulltext = [clause for clause in adds if "FULLTEXT" in clause]
        database.root_sql("".join(f"ALTER TABLE `{database.database}`.{name} {', '.join(group)};"
                                  for group in (plain, fulltext) if group))
        print(f"  {name}: {len(adds)} indexes built in {time.monotonic() - loaded:.0f} s", flush=True)
        path.unlink()
    print(f"  loaded in {time.monotonic() - started:.0f} s", flush=True)


def _index_clause(index: Any) -> str:
    """ADD [FULLTEXT] INDEX name (columns) for one of the models' indexes."""
    kind = "FULLTEXT INDEX" if index.dialect_options["mysql"].get("prefix") == "FULLTEXT" else "INDEX"
    return f"ADD {kind} {index.name} ({', '.join(column.name for column in index.columns)})"


def timed(call: Callable[[], Any], runs: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds over `runs` calls, after three warm-up calls."""
    for _ in range(3):
        call()
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[94]


def plan(settings: Settings, query: ListQuery) -> str:
    """The indexes EXPLAIN reports for the page query, table by table."""
    with session_scope(settings) as session:
        statement = page_statement(session, query)
        sql = str(statement.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))
        rows = session.execute(text("EXPLAIN " + sql)).mappings().all()
    return ", ".join(f"{r['table']}:{r['key'] or 'ALL'}" + (" +filesort" if "filesort" in (r["Extra"] or "") else "")
                     for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--buffer-pool-mb", type=int, default=512)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="list-bench-") as tmp:
        database = MariaDB(Path(tmp), free_port(), password="list-bench")
        print(f"starting MariaDB on 127.0.0.1:{database.port} in {tmp} ...", flush=True)
        database.start()
        try:
            # A production server sizes the buffer pool to its working set (here about 250 MB of rows,
            # indexes and full-text tables); the private server's 128 MiB default would time disk reads.
            # Bigger in-memory temporary tables keep a large search's sort off the disk, as MySQL 8's
            # TempTable engine does by default.
            database.root_sql(f"SET GLOBAL innodb_buffer_pool_size = {args.buffer_pool_mb} * 1024 * 1024;"
                              "SET GLOBAL tmp_table_size = 64 * 1024 * 1024;"
                              "SET GLOBAL max_heap_table_size = 64 * 1024 * 1024;")
            settings = load_settings({
                "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(database.port), "MYSQL_USER": database.user,
                "MYSQL_PASSWORD": database.password, "MYSQL_DATABASE": database.database,
                "S3_ACCESS_KEY": "unused", "S3_SECRET_KEY": "unused", "SECRETS_DIR": str(Path(tmp) / "secrets"),
            })
            create_schema(settings)
            print(f"loading {args.documents} documents + jobs ...", flush=True)
            load(settings, database, Path(tmp), args.documents)
            with session_scope(settings) as session:
                session.execute(text("ANALYZE TABLE documents, jobs"))
                version = session.execute(text("SELECT VERSION()")).scalar_one()
                hits = session.execute(select(func.count()).select_from(Job).where(
                    Job.text.like(f"%{RARE_WORD}%"))).scalar_one()
            results = run_queries(settings, args.runs)
        finally:
            dispose_engines()
            database.stop()

    print()
    print(f"list_documents on {args.documents} documents, {args.runs} runs each, in-process; MariaDB "
          f"{version}, buffer pool {args.buffer_pool_mb} MiB; '{RARE_WORD}' in {hits} texts")
    print(f"{'query':52}{'items':>6}{'p50 ms':>9}{'p95 ms':>9}  plan")
    for name, (items, p50, p95, access) in results.items():
        print(f"{name:52}{items:>6}{p50:>9.2f}{p95:>9.2f}  {access}")


def run_queries(settings: Settings, runs: int) -> dict[str, tuple[int, float, float, str]]:
    depth = 10_000
    # The cursor after the 10,000th document, as a client walking 1,000 pages of 10 would hold it.
    before_depth = list_documents(settings, ListQuery.from_params({"offset": str(depth - 10)}, TRUSTED))
    deep_cursor = before_depth["next_cursor"]
    window_from, window_to = (START + timedelta(days=90)).date(), (START + timedelta(days=119)).date()
    cases: dict[str, dict[str, str]] = {
        "page 1 (offset mode, with total)": {},
        f"offset page 1,000 (offset={depth}, with total)": {"offset": str(depth)},
        "cursor page at the same depth (no total)": {"cursor": deep_cursor},
        "filter content_type=image/png": {"content_type": "image/png"},
        "filter status=failed (5 % of jobs)": {"status": "failed"},
        "filter status=completed (85 % of jobs)": {"status": "completed"},
        "filter image/* + status=completed + 30 days": {"content_type": "image/*", "status": "completed",
                                                         "date_from": window_from.isoformat(),
                                                         "date_to": window_to.isoformat()},
        # `filename` is the start of the name (a substring had no index: 2.7 s at 1M documents).
        "filter filename prefix 'scan-0999'": {"filename": "scan-0999"},
        f"search q={RARE_WORD} (~1 % of texts)": {"q": RARE_WORD},
        "search q=invoice (most texts)": {"q": "invoice"},
        f"search q={RARE_WORD}, cursor page 2": {"q": RARE_WORD, "cursor": ""},
        # Deep offset pages under a filter: what a client paging by offset past the first pages meets.
        "search q=invoice, offset=100": {"q": "invoice", "offset": "100"},
        "search q=invoice, offset=1000": {"q": "invoice", "offset": "1000"},
        f"search q={RARE_WORD}, offset=500": {"q": RARE_WORD, "offset": "500"},
        f"status=completed, offset={depth}": {"status": "completed", "offset": str(depth)},
        "status=failed, offset=4000 (near its end)": {"status": "failed", "offset": "4000"},
        f"status=failed, offset={depth} (past its end)": {"status": "failed", "offset": str(depth)},
        "filename 'scan-01' (10 %, oldest), offset=1000": {"filename": "scan-01", "offset": "1000"},
        f"image/* + status=completed, offset={depth}": {"content_type": "image/*", "status": "completed",
                                                         "offset": str(depth)},
        # A user key's listing: the same page among its own documents (80 % of them).
        f"owner + image/* + completed, offset={depth}": {"owner": OWNERS[0], "content_type": "image/*",
                                                          "status": "completed", "offset": str(depth)},
        # A user key's search: every hit checked to be one of its own documents.
        f"owner + search q={RARE_WORD}": {"owner": OWNERS[0], "q": RARE_WORD},
        "owner + search q=invoice": {"owner": OWNERS[0], "q": "invoice"},
    }
    # Page 2 of the rare-word search, by the cursor of page 1.
    first_search = list_documents(settings, ListQuery.from_params({"q": RARE_WORD}, TRUSTED))
    cases[f"search q={RARE_WORD}, cursor page 2"]["cursor"] = first_search["next_cursor"]
    results: dict[str, tuple[int, float, float, str]] = {}
    print(f"  {'query':52}{'items':>6}{'p50 ms':>9}{'p95 ms':>9}  plan", flush=True)
    for name, params in cases.items():
        query = ListQuery.from_params(params, TRUSTED)
        items = len(list_documents(settings, query)["items"])
        p50, p95 = timed(lambda: list_documents(settings, ListQuery.from_params(params, TRUSTED)), runs)
        with session_scope(settings) as session:
            walked = search_recent(session, query) is not None
        # The walk's window grows with the depth an offset page wants (recent.search_recent).
        window = WINDOW * -(-(query.offset + query.limit + 1) // WANTED_PER_WINDOW)
        results[name] = (items, p50, p95, f"newest-first walk of up to {window} documents" if walked
                         else plan(settings, query))
        print(f"  {name:52}{items:>6}{p50:>9.2f}{p95:>9.2f}  {results[name][3]}", flush=True)

    def count_all() -> int:
        with session_scope(settings) as session:
            return int(session.execute(count_statement(ListQuery(), TOTAL_CAP)).scalar_one())

    # What `total` costs alone, as list_documents runs it: a COUNT that stops past TOTAL_CAP matches (a common
    # word's estimate counts the other filters up to page.BASE_COUNT_CAP, then takes the server's estimate).
    p50, p95 = timed(count_all, runs)
    results[f"COUNT behind total (stops past {TOTAL_CAP:,}), alone"] = (0, p50, p95, "documents: count")
    return results


if __name__ == "__main__":
    main()
