"""create_schema brings a database made by an older version up to date, on a private MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from common.config import load_settings
from common.db import create_schema, get_engine

pytestmark = pytest.mark.integration


def test_missing_columns_and_indexes_are_added(tmp_path: Path) -> None:
    """A database lacking a later column (pages.words) and indexes gets them; running again changes nothing."""
    from ocrstack.services import MariaDB, free_port

    database = MariaDB(tmp_path, free_port(), password="schema-test")
    try:
        database.start()
        settings = load_settings({
            "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(database.port), "MYSQL_USER": database.user,
            "MYSQL_PASSWORD": database.password, "MYSQL_DATABASE": database.database,
            "S3_ACCESS_KEY": "unused", "S3_SECRET_KEY": "unused", "SECRETS_DIR": str(tmp_path / "secrets"),
        })
        create_schema(settings)
        engine = get_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE pages DROP COLUMN words"))
            conn.execute(text("DROP INDEX ix_jobs_status ON jobs"))
            conn.execute(text("DROP INDEX ftx_jobs_text ON jobs"))

        create_schema(settings)
        create_schema(settings)

        found = inspect(engine)
        assert "words" in {c["name"] for c in found.get_columns("pages")}
        indexes = {i["name"] for i in found.get_indexes("jobs")}
        assert {"ix_jobs_status", "ftx_jobs_text"} <= indexes
        engine.dispose()
    finally:
        database.stop()
