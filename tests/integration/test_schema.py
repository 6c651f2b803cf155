"""create_schema brings a database made by an older version up to date, on a private MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from common.adapters.db import create_schema, get_engine
from tests.support import private_database

pytestmark = pytest.mark.integration


def test_missing_columns_and_indexes_are_added(tmp_path: Path) -> None:
    """A database lacking a later column (pages.words) and indexes gets them; running again changes nothing."""
    with private_database(tmp_path, password="schema-test") as settings:
        engine = get_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE pages DROP COLUMN words"))
            conn.execute(text("DROP INDEX ix_jobs_status ON jobs"))
            conn.execute(text("DROP INDEX ftx_jobs_text ON jobs"))

        create_schema(settings)
        create_schema(settings)

        found = inspect(engine)
        assert "words" in {c["name"] for c in found.get_columns("pages")}
        assert {"ix_jobs_status", "ftx_jobs_text"} <= {i["name"] for i in found.get_indexes("jobs")}


def test_a_database_from_before_owners_gets_keys_owners_and_several_jobs_per_document(tmp_path: Path) -> None:
    """The schema of the previous release (no api_keys, one unique job per document) is upgraded in place,
    and each existing document points at its job."""
    with private_database(tmp_path, password="schema-test") as settings:
        engine = get_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE api_keys"))
            conn.execute(text("ALTER TABLE jobs ADD UNIQUE INDEX document_id (document_id)"))
            conn.execute(text("ALTER TABLE jobs DROP INDEX ix_jobs_document_id, DROP COLUMN owner_id"))
            conn.execute(text("ALTER TABLE documents DROP INDEX ix_documents_owner_created_id, "
                              "DROP COLUMN owner_id, DROP COLUMN job_id"))
            conn.execute(text(
                "INSERT INTO documents (id, filename, content_type, size_bytes, bucket, object_key, source, "
                "source_hash, created_at) VALUES ('d1', 'old.png', 'image/png', 1, 'b', 'k', 'upload', 'h1', NOW())"))
            conn.execute(text(
                "INSERT INTO jobs (id, document_id, status, lang, attempts, version, max_attempts, pages_done, "
                "created_at, updated_at) VALUES ('j1', 'd1', 'completed', 'eng', 1, 1, 3, 1, NOW(), NOW())"))

        create_schema(settings)
        create_schema(settings)

        found = inspect(engine)
        assert "api_keys" in found.get_table_names()
        assert not [u for u in found.get_unique_constraints("jobs") if u["column_names"] == ["document_id"]]
        assert "ix_jobs_document_id" in {i["name"] for i in found.get_indexes("jobs")}
        with engine.begin() as conn:
            assert conn.execute(text("SELECT job_id, owner_id FROM documents WHERE id = 'd1'")).one() == ("j1", None)
            # A second job on the same document is allowed now (a re-process).
            conn.execute(text(
                "INSERT INTO jobs (id, document_id, status, lang, attempts, version, max_attempts, pages_done, "
                "created_at, updated_at) VALUES ('j2', 'd1', 'pending', 'deu', 0, 0, 3, 0, NOW(), NOW())"))
