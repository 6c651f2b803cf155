"""create_schema brings a database made by an older version up to date, on a private MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from common.db import create_schema, get_engine
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
