"""Reads on a real MariaDB read replica: list and status read there once it is caught up, the primary answers
when it lags or is down (at most one timeout), and writes never go there."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, inspect

from common.adapters.db import sessions
from common.adapters.db import Document, Job, create_schema, dispose_engines, session_scope
from common.config import Settings, load_settings
from common.errors import JobNotFound
from common.models import TRUSTED
from common.rules import jobs
from common.rules.listing import ListQuery, list_documents
from common.rules.status import job_status
from ocrstack.services import MariaDB, free_port
from tests.support import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 1.0
RETRY = 3.0
T0 = datetime(2026, 3, 1, 12, 0, 0)


@dataclass
class Pair:
    """A primary with a binary log and a replica following it by GTID, and settings naming both."""

    primary: MariaDB
    replica: MariaDB
    settings: Settings


def _follow(replica: MariaDB, primary: MariaDB) -> None:
    replica.root_sql(
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, MASTER_USER='replication', "
        f"MASTER_PASSWORD='replica-test', MASTER_USE_GTID=slave_pos; START SLAVE; SET GLOBAL read_only = 1;")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two private servers on free ports; the replica replays the primary's whole binary log (schema included)."""
    folder = tmp_path_factory.mktemp("replica")
    primary = MariaDB(folder / "primary", free_port(), password="replica-test", server_id=1, binlog=True)
    replica = MariaDB(folder / "replica", free_port(), password="replica-test", server_id=2)
    try:
        primary.start()
        primary.root_sql("CREATE USER 'replication'@'127.0.0.1' IDENTIFIED BY 'replica-test';"
                         "GRANT REPLICATION SLAVE ON *.* TO 'replication'@'127.0.0.1';")
        replica.start()
        _follow(replica, primary)
        settings = load_settings({
            "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(primary.port), "MYSQL_USER": primary.user,
            "MYSQL_PASSWORD": primary.password, "MYSQL_DATABASE": primary.database,
            "MYSQL_REPLICA_HOST": "127.0.0.1", "MYSQL_REPLICA_PORT": str(replica.port),
            "MYSQL_REPLICA_TIMEOUT": str(TIMEOUT), "MYSQL_REPLICA_RETRY_SECONDS": str(RETRY),
            "STATUS_CACHE": "false", "S3_ACCESS_KEY": "unused", "S3_SECRET_KEY": "unused",
            "SECRETS_DIR": str(folder / "secrets"),
        })
        create_schema(settings)
        # The replica has replayed the migrations once the last one's column is there.
        engine = create_engine(str(settings.replica_url))
        wait_until(lambda: inspect(engine).has_table("jobs") and "document_created_at" in {
            c["name"] for c in inspect(engine).get_columns("jobs")}, 60, what="the schema on the replica")
        engine.dispose()
        yield Pair(primary, replica, settings)
    finally:
        dispose_engines()
        replica.stop()
        primary.stop()


@pytest.fixture
def live(pair: Pair) -> Pair:
    """The pair emptied, the replica running and caught up, and no replica passed over from an earlier test."""
    if pair.replica.pid() is None:
        pair.replica.start()
    pair.replica.root_sql("START SLAVE;")
    # Rows written on the replica alone (never on the primary, so no replicated change can miss them).
    pair.replica.root_sql(f"USE `{pair.replica.database}`; DELETE FROM documents WHERE filename LIKE 'replica-only%';"
                          "DELETE FROM jobs WHERE lang = 'replica';")
    dispose_engines()
    with session_scope(pair.settings) as session:
        session.execute(delete(Job))
        session.execute(delete(Document))
    return pair


def add_document(settings: Settings, name: str, moment: datetime) -> tuple[str, str]:
    """A document and its pending job on the primary, as an upload makes them; returns (document id, job id)."""
    document_id = str(uuid.uuid4())
    with session_scope(settings) as session:
        document = Document(id=document_id, filename=name, content_type="application/pdf", size_bytes=1,
                            bucket="documents", object_key=f"uploads/{document_id}", source="upload",
                            source_hash=uuid.uuid4().hex * 2, created_at=moment)
        session.add(document)
        session.flush()
        job = jobs.create(session, document, "eng", 3, None, None)
        job_id = job.id
        jobs.show(session, document_id, job_id)
    return document_id, job_id


def only_on_replica(pair: Pair, name: str) -> None:
    """A document written on the replica alone (as root, past read_only): seen in a listing only when the
    replica answers it."""
    document_id, job_id, moment = str(uuid.uuid4()), str(uuid.uuid4()), T0 + timedelta(days=1)
    pair.replica.root_sql(
        f"USE `{pair.replica.database}`;"
        f"INSERT INTO documents (id, filename, content_type, size_bytes, bucket, object_key, source, source_hash, "
        f"created_at, job_id) VALUES ('{document_id}', '{name}', 'application/pdf', 1, 'documents', 'k', 'upload', "
        f"'{uuid.uuid4().hex}', '{moment}', '{job_id}');"
        f"INSERT INTO jobs (id, document_id, status, lang, attempts, version, max_attempts, pages_done, created_at, "
        f"document_created_at, updated_at) VALUES ('{job_id}', '{document_id}', 'pending', 'replica', 0, 0, 3, 0, "
        f"'{moment}', '{moment}', '{moment}');")


def names(settings: Settings) -> list[str]:
    page = list_documents(settings, ListQuery.from_params({"limit": "100"}, TRUSTED))
    return [item["filename"] for item in page["items"]]


def timed_names(settings: Settings) -> tuple[list[str], float]:
    started = time.monotonic()
    found = names(settings)
    return found, time.monotonic() - started


def test_list_and_status_read_from_the_caught_up_replica(live: Pair) -> None:
    """With the replica caught up, list answers from it; the status of a job created a moment ago is found."""
    add_document(live.settings, "on-both.pdf", T0)
    only_on_replica(live, "replica-only.pdf")
    wait_until(lambda: "replica-only.pdf" in names(live.settings), 10, what="the replica's listing")
    assert set(names(live.settings)) == {"replica-only.pdf", "on-both.pdf"}
    _document_id, job_id = add_document(live.settings, "just-made.pdf", T0 + timedelta(hours=1))
    # Read straight after the write: the replica waits until it has it (or the primary answers).
    assert job_status(live.settings, job_id, TRUSTED).status == "pending"
    assert "just-made.pdf" in names(live.settings)
    assert not sessions._passed_over_until  # every read above was the replica's


def test_a_lagging_replica_costs_one_timeout_then_the_primary_answers(live: Pair) -> None:
    """Replication stopped (the replica lags): the first read waits at most about the timeout and is answered
    by the primary, which sees the new job; the next reads skip the replica until the retry time has passed."""
    only_on_replica(live, "replica-only.pdf")
    wait_until(lambda: "replica-only.pdf" in names(live.settings), 10, what="the replica answering")
    live.replica.root_sql("STOP SLAVE SQL_THREAD;")
    _document_id, job_id = add_document(live.settings, "behind.pdf", T0)

    started = time.monotonic()
    assert job_status(live.settings, job_id, TRUSTED).status == "pending"
    assert time.monotonic() - started < TIMEOUT + 1.0
    found, seconds = timed_names(live.settings)
    assert found == ["behind.pdf"] and seconds < TIMEOUT / 2  # the primary, at once: the replica is passed over

    time.sleep(RETRY)
    live.replica.root_sql("START SLAVE SQL_THREAD;")
    wait_until(lambda: "replica-only.pdf" in names(live.settings), 10, what="the replica answering again")
    assert set(names(live.settings)) == {"replica-only.pdf", "behind.pdf"}


def test_a_replica_stopped_mid_test_leaves_the_primary_answering(live: Pair) -> None:
    """The replica's server stops between two reads: list and status still answer, from the primary, within
    one timeout, and a missing job is still a clean not-found."""
    _document_id, job_id = add_document(live.settings, "kept.pdf", T0)
    only_on_replica(live, "replica-only.pdf")
    wait_until(lambda: "replica-only.pdf" in names(live.settings), 10, what="the replica answering")

    live.replica.stop()

    started = time.monotonic()
    assert names(live.settings) == ["kept.pdf"]
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert job_status(live.settings, job_id, TRUSTED).status == "pending"
    with pytest.raises(JobNotFound):
        job_status(live.settings, str(uuid.uuid4()), TRUSTED)
    found, seconds = timed_names(live.settings)
    assert found == ["kept.pdf"] and seconds < TIMEOUT / 2

    live.replica.start()
    # A restarted replica goes on from its own position (CHANGE MASTER's settings are kept on disk).
    live.replica.root_sql("START SLAVE; SET GLOBAL read_only = 1;")
    time.sleep(RETRY)
    wait_until(lambda: "replica-only.pdf" in names(live.settings), 15, what="the restarted replica answering")


def test_writes_and_claims_stay_on_the_primary(live: Pair) -> None:
    """A claim (a write that must see its own result) works with replication stopped: nothing of it waits on
    the replica, and the claimed job's status read afterwards is the primary's."""
    live.replica.root_sql("STOP SLAVE SQL_THREAD;")
    _document_id, job_id = add_document(live.settings, "claimed.pdf", T0)
    claim = jobs.claim(live.settings, job_id)
    assert claim is not None
    assert job_status(live.settings, job_id, TRUSTED).status == "processing"
    assert sessions._passed_over_until  # the lagging replica was passed over for that read
