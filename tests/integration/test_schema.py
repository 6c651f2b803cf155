"""Schema migrations on a private MariaDB: create, upgrade, downgrade, adopt a database made before migrations,
the revision check each process makes on its first use of the database; and `ocr-pipeline init` on the stack."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from common.adapters import migrations
from common.adapters.db import Base, create_schema, dispose_engines, session_scope
from common.config import Settings
from common.errors import ConfigError
from tests.support import private_database

pytestmark = pytest.mark.integration

DOCUMENT = ("INSERT INTO documents (id, filename, content_type, size_bytes, bucket, object_key, source, source_hash, "
            "created_at) VALUES ('d1', 'old.png', 'image/png', 1, 'b', 'k', 'upload', 'h1', NOW())")


def job(job_id: str, status: str = "completed") -> str:
    return ("INSERT INTO jobs (id, document_id, status, lang, attempts, version, max_attempts, pages_done, created_at, "
            f"updated_at) VALUES ('{job_id}', 'd1', '{status}', 'eng', 1, 1, 3, 1, NOW(), NOW())")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_database(tmp_path_factory.mktemp("schema-db"), password="schema-test", revision=None) as settings:
        yield settings


@pytest.fixture
def settings(database: Settings) -> Iterator[Settings]:
    """The module's database, emptied: every test starts without a table."""
    dispose_engines()
    engine = raw(database)
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in inspect(conn).get_table_names():
            conn.execute(text(f"DROP TABLE `{table}`"))
    engine.dispose()
    yield database
    dispose_engines()


def raw(settings: Settings) -> Engine:
    """An engine without the revision check of get_engine, to shape the database the way a test needs."""
    return create_engine(settings.database_url)


def differences(engine: Engine) -> list[object]:
    """What alembic's autogenerate finds between the database and the models (empty: they agree)."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata))


def previous_release(engine: Engine) -> None:
    """A database as the last release before migrations left it: no alembic_version, no api_keys, no owners,
    one unique job per document; built from the models, independently of the revisions."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE api_keys"))
        conn.execute(text("DROP TABLE job_chunks"))
        conn.execute(text("ALTER TABLE jobs DROP COLUMN pdfa, DROP COLUMN warnings"))
        conn.execute(text("ALTER TABLE pages DROP COLUMN warnings"))
        conn.execute(text("ALTER TABLE jobs DROP INDEX ix_jobs_status_listed, DROP COLUMN document_created_at, "
                          "DROP COLUMN shown, DROP COLUMN document_owner_id"))
        conn.execute(text("ALTER TABLE jobs ADD UNIQUE INDEX document_id (document_id)"))
        conn.execute(text("ALTER TABLE jobs DROP INDEX ix_jobs_document_id, DROP COLUMN owner_id, "
                          "DROP COLUMN callback_url, DROP COLUMN callback_state, DROP COLUMN callback_attempts, "
                          "DROP COLUMN callback_last_code"))
        conn.execute(text("ALTER TABLE documents DROP INDEX ix_documents_owner_created_id, "
                          "DROP INDEX ix_documents_created_id_type_job, "
                          "DROP INDEX ix_documents_owner_created_id_type_job, "
                          "DROP INDEX ix_documents_filename_created_id, "
                          "DROP INDEX ix_documents_owner_filename_created_id, "
                          "DROP COLUMN owner_id, DROP COLUMN job_id"))
        conn.execute(text(DOCUMENT))
        conn.execute(text(job("j1")))


def test_head_is_the_newest_revision_and_history_is_one_line() -> None:
    """migrations.HEAD (what the models describe, checked without alembic on start) is the revisions' only head."""
    script = ScriptDirectory.from_config(migrations.config())
    assert script.get_heads() == [migrations.HEAD]
    assert [r.revision for r in script.walk_revisions()] == [
        migrations.HEAD, "0008_list_million", "0007_webhook_seal", "0006_warnings", "0005_list_walk", "0004_chunks_pdfa", "0003_callbacks",
        "0002_keys_owners", "0001_baseline"]


def test_an_empty_database_gets_the_schema_of_the_models_and_a_second_run_changes_nothing(settings: Settings) -> None:
    """Upgrading an empty database runs every revision; the result is what the models describe."""
    change = create_schema(settings)
    assert (change.before, change.after, change.adopted) == (None, migrations.HEAD, False)
    assert differences(raw(settings)) == []
    again = create_schema(settings)
    assert (again.before, again.after) == (migrations.HEAD, migrations.HEAD)


def test_a_database_at_the_first_revision_is_upgraded_and_each_document_points_at_its_job(settings: Settings) -> None:
    """From 0001 (before keys and owners): api_keys and owners appear, documents.job_id is filled, and a document
    may have a second job (a re-process)."""
    create_schema(settings, "0001_baseline")
    engine = raw(settings)
    with engine.begin() as conn:
        conn.execute(text(DOCUMENT))
        conn.execute(text(job("j1")))

    change = create_schema(settings)

    assert (change.before, change.after) == ("0001_baseline", migrations.HEAD)
    assert differences(engine) == []
    with engine.begin() as conn:
        assert conn.execute(text("SELECT job_id, owner_id FROM documents WHERE id = 'd1'")).one() == ("j1", None)
        conn.execute(text(job("j2", "pending")))


def test_downgrading_to_the_first_revision_and_upgrading_again_restores_the_models(settings: Settings) -> None:
    """head -> 0001 removes keys and owners and makes the job unique per document again; 0001 -> head undoes it."""
    create_schema(settings)
    engine = raw(settings)

    change = migrations.downgrade(engine, "0001_baseline")

    assert (change.before, change.after) == (migrations.HEAD, "0001_baseline")
    found = inspect(engine)
    assert "api_keys" not in found.get_table_names()
    assert "owner_id" not in {c["name"] for c in found.get_columns("documents")}
    assert [u["column_names"] for u in found.get_unique_constraints("jobs")] == [["document_id"]]
    create_schema(settings)
    assert differences(engine) == []


def test_downgrading_the_callbacks_drops_only_their_columns(settings: Settings) -> None:
    """0003 -> 0002 removes the completion webhook's columns from jobs and nothing else; upgrading restores them."""
    create_schema(settings)
    engine = raw(settings)
    change = migrations.downgrade(engine, "0002_keys_owners")
    assert (change.before, change.after) == (migrations.HEAD, "0002_keys_owners")
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert not {c for c in columns if c.startswith("callback_")} and {"owner_id", "text"} <= columns
    create_schema(settings)
    assert differences(engine) == []


def test_downgrading_the_chunks_drops_only_their_table_and_the_pdfa_choice(settings: Settings) -> None:
    """0004 -> 0003 removes job_chunks and jobs.pdfa and nothing else; upgrading makes them again."""
    create_schema(settings)
    engine = raw(settings)
    change = migrations.downgrade(engine, "0003_callbacks")
    assert (change.before, change.after) == (migrations.HEAD, "0003_callbacks")
    tables = set(inspect(engine).get_table_names())
    assert "job_chunks" not in tables and {"jobs", "pages", "documents", "api_keys"} <= tables
    assert "pdfa" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    create_schema(settings)
    assert differences(engine) == []


WALK_INDEXES = {"ix_documents_created_id_type_job": ["created_at", "id", "content_type", "job_id"],
                "ix_documents_owner_created_id_type_job": ["owner_id", "created_at", "id", "content_type", "job_id"]}


def indexes(engine: Engine, table: str) -> dict[str, list[str]]:
    return {str(i["name"]): [str(c) for c in i["column_names"]] for i in inspect(engine).get_indexes(table)}


def test_downgrading_the_list_walk_drops_only_its_indexes_and_keeps_the_rows(settings: Settings) -> None:
    """0005 -> 0004 drops the two covering indexes of the listing's walk and nothing else, with rows in the
    table (nothing refuses it: an index holds no data); upgrading builds them again over those rows."""
    create_schema(settings)
    engine = raw(settings)
    assert WALK_INDEXES.items() <= indexes(engine, "documents").items()
    # Going back to 0004 undoes 0008 too: its file name indexes go as well.
    before = set(indexes(engine, "documents")) - set(WALK_INDEXES) - {
        "ix_documents_filename_created_id", "ix_documents_owner_filename_created_id"}
    with engine.begin() as conn:
        conn.execute(text(DOCUMENT))
        conn.execute(text(job("j1")))
        conn.execute(text("UPDATE documents SET job_id = 'j1', owner_id = '0123456789ab' WHERE id = 'd1'"))

    change = migrations.downgrade(engine, "0004_chunks_pdfa")

    assert (change.before, change.after) == (migrations.HEAD, "0004_chunks_pdfa")
    assert set(indexes(engine, "documents")) == before
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT job_id, owner_id FROM documents WHERE id = 'd1'")).one()
    assert kept == ("j1", "0123456789ab")
    change = create_schema(settings)
    assert (change.before, change.after) == ("0004_chunks_pdfa", migrations.HEAD)
    assert WALK_INDEXES.items() <= indexes(engine, "documents").items()
    assert differences(engine) == []
    with engine.connect() as conn:
        # The rebuilt index holds the row: read from it alone (the hint would fail on a missing index).
        found = conn.execute(text("SELECT id, job_id FROM documents FORCE INDEX (ix_documents_created_id_type_job) "
                                  "WHERE content_type LIKE 'image/%' ORDER BY created_at, id")).all()
    assert found == [("d1", "j1")]


def test_downgrading_the_warnings_drops_only_their_columns(settings: Settings) -> None:
    """0006 -> 0005 drops pages.warnings and jobs.warnings and nothing else; the jobs stay; upgrading adds them."""
    create_schema(settings)
    engine = raw(settings)
    with engine.begin() as conn:
        conn.execute(text(DOCUMENT))
        conn.execute(text(job("j1")))

    change = migrations.downgrade(engine, "0005_list_walk")

    assert (change.before, change.after) == (migrations.HEAD, "0005_list_walk")
    columns = {table: {c["name"] for c in inspect(engine).get_columns(table)} for table in ("jobs", "pages")}
    assert "warnings" not in columns["jobs"] | columns["pages"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM jobs")).scalars().all() == ["j1"]
    assert create_schema(settings).after == migrations.HEAD
    assert differences(engine) == []


def test_the_million_document_indexes_go_down_alone_and_come_back_with_the_copied_dates(settings: Settings) -> None:
    """0008 -> 0007 drops jobs.document_created_at and the three indexes only (0009's flag going first);
    upgrading copies every job's document created_at again, so a rare status's jobs come back in list order."""
    create_schema(settings)
    engine = raw(settings)
    with engine.begin() as conn:
        conn.execute(text(DOCUMENT))
        conn.execute(text(job("j1", "failed")))

    change = migrations.downgrade(engine, "0007_webhook_seal")

    assert (change.before, change.after) == (migrations.HEAD, "0007_webhook_seal")
    assert "document_created_at" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert "ix_jobs_status_listed" not in indexes(engine, "jobs")
    assert not {"ix_documents_filename_created_id", "ix_documents_owner_filename_created_id"} & set(
        indexes(engine, "documents"))
    assert create_schema(settings).after == migrations.HEAD
    assert differences(engine) == []
    with engine.connect() as conn:
        copied = conn.execute(text("SELECT j.document_created_at = d.created_at FROM jobs j "
                                   "FORCE INDEX (ix_jobs_status_listed) JOIN documents d ON d.id = j.document_id "
                                   "WHERE j.status = 'failed'")).scalar_one()
    assert copied == 1
    assert indexes(engine, "jobs")["ix_jobs_status_listed"] == ["status", "document_created_at", "document_id"]


def reprocessed_document(settings: Settings) -> Engine:
    """The schema at the code's revision with a re-processed document: d1 and its two jobs, j1 and j2."""
    create_schema(settings)
    engine = raw(settings)
    with engine.begin() as conn:
        conn.execute(text(DOCUMENT))
        conn.execute(text(job("j1")))
        conn.execute(text(job("j2")))
    return engine


def test_the_search_columns_go_down_alone_and_come_back_from_each_document(settings: Settings) -> None:
    """0009 -> 0008 drops jobs.shown and jobs.document_owner_id only; upgrading sets `shown` on the job each
    document shows (documents.job_id) and on no other (a re-processed document's earlier job stays unshown), and
    copies the document's owner to each of its jobs."""
    engine = reprocessed_document(settings)
    with engine.begin() as conn:
        conn.execute(text("UPDATE documents SET job_id = 'j2', owner_id = '0123456789ab' WHERE id = 'd1'"))

    change = migrations.downgrade(engine, "-1")

    assert (change.before, change.after) == (migrations.HEAD, "0008_list_million")
    assert not {"shown", "document_owner_id"} & {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert create_schema(settings).after == migrations.HEAD
    assert differences(engine) == []
    with engine.connect() as conn:
        copied = {row.id: (row.shown, row.document_owner_id)
                  for row in conn.execute(text("SELECT id, shown, document_owner_id FROM jobs"))}
    assert copied == {"j1": (0, "0123456789ab"), "j2": (1, "0123456789ab")}


def test_downgrading_is_refused_while_a_document_has_several_jobs(settings: Settings) -> None:
    """Going back to one job per document would have to drop a re-processed document's jobs: refused, naming it."""
    engine = reprocessed_document(settings)
    with pytest.raises(RuntimeError, match="documents d1 have several"):
        migrations.downgrade(engine, "0001_baseline")
    with engine.connect() as conn:
        assert migrations.revision_of(conn) == migrations.HEAD


def test_a_database_of_the_release_before_migrations_is_recognised_stamped_and_upgraded(settings: Settings) -> None:
    """No alembic_version, no api_keys, one unique job per document: stamped 0001, upgraded in place, and each
    existing document points at its job."""
    engine = raw(settings)
    previous_release(engine)

    change = create_schema(settings)

    assert (change.before, change.after, change.adopted) == ("0001_baseline", migrations.HEAD, True)
    assert "recognised as revision 0001_baseline" in change.describe()
    assert differences(engine) == []
    with engine.begin() as conn:
        assert conn.execute(text("SELECT job_id, owner_id FROM documents WHERE id = 'd1'")).one() == ("j1", None)
        conn.execute(text(job("j2", "pending")))


def test_a_database_made_before_migrations_with_keys_and_owners_is_stamped_at_the_code_revision(
        settings: Settings) -> None:
    """A database the hand-written upgrades already brought to this schema is only stamped."""
    engine = raw(settings)
    Base.metadata.create_all(engine)

    change = create_schema(settings)

    assert (change.before, change.after, change.adopted) == (migrations.HEAD, migrations.HEAD, True)
    assert differences(engine) == []


def test_a_database_made_before_migrations_that_matches_no_release_is_refused_and_left_alone(
        settings: Settings) -> None:
    """An older or hand-altered database is not guessed at: the error names what it lacks, nothing is changed."""
    engine = raw(settings)
    previous_release(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE pages DROP COLUMN words"))

    with pytest.raises(ConfigError, match=r"for 0001_baseline it lacks pages\.words"):
        create_schema(settings)

    found = inspect(engine)
    assert "alembic_version" not in found.get_table_names()
    assert "api_keys" not in found.get_table_names()


def test_a_process_refuses_a_database_behind_the_code_unless_auto_upgrade_is_on(settings: Settings) -> None:
    """On first use a database at an older revision is refused with the command that fixes it; with
    DB_AUTO_UPGRADE it is upgraded there and then."""
    create_schema(settings, "0001_baseline")

    with pytest.raises(ConfigError, match=r"at revision 0001_baseline.*ocr-pipeline init"):
        with session_scope(settings) as session:
            session.execute(text("SELECT 1"))

    with session_scope(dataclasses.replace(settings, db_auto_upgrade=True)) as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrations.HEAD


def test_a_process_refuses_an_empty_database_and_one_made_before_migrations(settings: Settings) -> None:
    """Neither is upgraded behind the operator's back when DB_AUTO_UPGRADE is off (the default)."""
    with pytest.raises(ConfigError, match="schema is empty"):
        with session_scope(settings):
            pass
    previous_release(raw(settings))
    with pytest.raises(ConfigError, match="made before schema migrations"):
        with session_scope(settings):
            pass


def test_upgrades_started_together_take_turns(settings: Settings) -> None:
    """Two upgraders at once (replicas starting together): one creates the schema, the other finds it done."""
    changes: list[migrations.Change] = []
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            changes.append(create_schema(settings))
        except BaseException as e:  # noqa: BLE001 (handed to the test thread)
            errors.append(e)

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    assert sorted((c.before or "", c.after) for c in changes) == [("", migrations.HEAD),
                                                                  (migrations.HEAD, migrations.HEAD)]


def test_init_command_on_the_running_stack_finds_the_schema_current_and_sets_the_bucket_rules(stack: Any) -> None:
    """`ocr-pipeline init`, the command compose's setup and the deploy guide run, repeated on a running stack:
    nothing to upgrade, the rules for both prefixes set again, the stack's admin key listed."""
    env = {**os.environ, **stack.function_env()}
    done = subprocess.run([str(Path(sys.executable).with_name("ocr-pipeline")), "init"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"revision {migrations.HEAD}; up to date" in done.stdout
    assert "notifies arn:minio:sqs::OCR:webhook of objects created under inbox/ and uploads/" in done.stdout
    assert "init: active admin keys: " in done.stdout


def test_downgrading_the_webhook_seal_drops_only_its_column(settings: Settings) -> None:
    """0007 -> 0006 drops api_keys.webhook_seal (0008's indexes going first) and nothing else; upgrading adds it
    back."""
    create_schema(settings)
    engine = raw(settings)
    change = migrations.downgrade(engine, "0006_warnings")
    assert (change.before, change.after) == (migrations.HEAD, "0006_warnings")
    assert "webhook_seal" not in {c["name"] for c in inspect(engine).get_columns("api_keys")}
    assert create_schema(settings).after == migrations.HEAD
    assert differences(engine) == []
