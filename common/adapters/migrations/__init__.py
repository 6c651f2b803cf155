"""Schema migrations (Alembic): bring a database to the code's revision, adopting one made before migrations.

The revisions are in versions/ (env.py runs them). Nothing here imports alembic until a migration is due,
so a function that only checks the revision on start does not pay for it.

A schema change: change the models in common/adapters/db/schema.py, then, from the repository root, with MYSQL_*
naming a database at the current head, `alembic revision --autogenerate --rev-id 0003_<what> -m "<what>"`
(configured in pyproject.toml); read and complete the file it writes, and set HEAD below to its id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from common.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

FOLDER = Path(__file__).resolve().parent
# The revision the models of common/adapters/db/schema.py describe (a unit test checks it is the newest one).
HEAD = "0009_search_on_jobs"
# How long an upgrade waits for another process's upgrade of the same database to finish.
LOCK_SECONDS = 300

# What a database made before migrations holds at each release, newest first: {table: columns and named
# indexes}. Frozen, as that history no longer changes; an unknown shape is refused rather than guessed at.
_DOCUMENTS = {"id", "filename", "content_type", "size_bytes", "bucket", "object_key", "etag", "source",
              "source_hash", "created_at", "ix_documents_created_id", "ix_documents_type_created_id"}
_JOBS = {"id", "document_id", "status", "lang", "attempts", "version", "max_attempts", "claim_token",
         "lease_expires_at", "page_count", "pages_done", "text", "outputs", "error_code", "error_message",
         "request_id", "created_at", "updated_at", "started_at", "finished_at", "ix_jobs_status", "ftx_jobs_text"}
_PAGES = {"id", "job_id", "page_number", "text", "confidence", "method", "width", "height", "duration_ms",
          "rotation", "words", "uq_pages_job_page"}
# Each release as what it changed on the one before.
_AT_0001 = {"documents": _DOCUMENTS, "jobs": _JOBS, "pages": _PAGES}
_AT_0002 = {
    "api_keys": {"id", "name", "role", "secret_hash", "created_at", "last_used_at", "revoked_at"},
    "documents": _DOCUMENTS | {"owner_id", "job_id", "ix_documents_owner_created_id"},
    "jobs": _JOBS | {"owner_id", "ix_jobs_document_id"},
    "pages": _PAGES,
}
_AT_0003 = {**_AT_0002, "jobs": _AT_0002["jobs"] | {"callback_url", "callback_state", "callback_attempts",
                                                     "callback_last_code"}}
_AT_0004 = {**_AT_0003, "jobs": _AT_0003["jobs"] | {"pdfa"},
            "job_chunks": {"job_id", "number", "first_page", "last_page", "status", "attempts", "claim_token",
                           "lease_expires_at", "updated_at"}}
_AT_0005 = {**_AT_0004, "documents": _AT_0004["documents"] | {"ix_documents_created_id_type_job",
                                                               "ix_documents_owner_created_id_type_job"}}
_AT_0006 = {**_AT_0005, "jobs": _AT_0005["jobs"] | {"warnings"}, "pages": _AT_0005["pages"] | {"warnings"}}
_AT_0007 = {**_AT_0006, "api_keys": _AT_0006["api_keys"] | {"webhook_seal"}}
_AT_0008 = {**_AT_0007, "jobs": _AT_0007["jobs"] | {"document_created_at", "ix_jobs_status_listed"},
            "documents": _AT_0007["documents"] | {"ix_documents_filename_created_id",
                                                   "ix_documents_owner_filename_created_id"}}
_AT_0009 = {**_AT_0008, "jobs": _AT_0008["jobs"] | {"shown", "document_owner_id"}}
_RELEASES: tuple[tuple[str, dict[str, set[str]]], ...] = (
    # What the models make since jobs say which one their document shows, and whose it is (made by create_all, it
    # is stamped, not upgraded).
    ("0009_search_on_jobs", _AT_0009),
    ("0008_list_million", _AT_0008),
    ("0007_webhook_seal", _AT_0007),
    ("0006_warnings", _AT_0006),
    ("0005_list_walk", _AT_0005),
    ("0004_chunks_pdfa", _AT_0004),
    ("0003_callbacks", _AT_0003),
    ("0002_keys_owners", _AT_0002),
    ("0001_baseline", _AT_0001),
)


@dataclass(frozen=True)
class Change:
    """What an upgrade did: the revision found (None: no schema at all) and the one left."""

    before: str | None
    after: str | None
    # The database was made before migrations: it was recognised as `before` and stamped so.
    adopted: bool = False

    def describe(self) -> str:
        if self.before is None:
            return f"created at revision {self.after}"
        found = f"a database from before migrations, recognised as revision {self.before}" if self.adopted \
            else f"revision {self.before}"
        return f"{found}; now at {self.after}" if self.before != self.after else f"{found}; up to date"


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our revisions, running on `connection` (see env.py)."""
    _quiet_alembic()
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER))
    cfg.attributes["connection"] = connection
    return cfg


def revision_of(connection: Connection) -> str | None:
    """The database's revision; None when it has no alembic_version table (empty, or made before migrations)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def has_tables(connection: Connection) -> bool:
    return inspect(connection).has_table("documents")


def is_behind(revision: str | None) -> bool:
    """Whether a database at `revision` lacks revisions of this code (False for one this code does not know,
    which a newer release made: the code is behind the database, not the other way round)."""
    if revision is None:
        return True
    if revision == HEAD:
        return False
    _quiet_alembic()
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except CommandError:
        return False


def recognise(connection: Connection) -> str | None:
    """The release a database made before migrations matches (None: it has none of our tables).

    Raises ConfigError naming what is missing when it matches no release, or holds only part of one.
    """
    found = inspect(connection)
    tables = set(found.get_table_names())
    ours = {table for _, shape in _RELEASES for table in shape}
    if not tables & ours:
        return None
    lacking: dict[str, list[str]] = {}
    for revision, shape in _RELEASES:
        missing = []
        for table, names in sorted(shape.items()):
            if table not in tables:
                missing.append(table)
                continue
            present = {c["name"] for c in found.get_columns(table)} | {
                str(i["name"]) for i in found.get_indexes(table)} | {
                str(u["name"]) for u in found.get_unique_constraints(table)}
            missing += [f"{table}.{name}" for name in sorted(names - present)]
        if not missing:
            return revision
        lacking[revision] = missing
    raise ConfigError(
        "the database has tables but no alembic_version, and matches no release this code can upgrade: "
        + "; ".join(f"for {revision} it lacks {', '.join(names)}" for revision, names in lacking.items()))


def upgrade(engine: Engine, revision: str = "head") -> Change:
    """Upgrade to `revision` (the code's by default), stamping a database made before migrations first.

    A named lock makes concurrent upgraders (replicas starting together) take turns; the later ones find
    the work done.
    """
    _quiet_alembic()
    from alembic import command


    with engine.connect() as connection, _locked(connection):
        before = revision_of(connection)
        adopted = False
        if before is None:
            before = recognise(connection)
            if before is not None:
                command.stamp(config(connection), before)
                connection.commit()
                adopted = True
        command.upgrade(config(connection), revision)
        connection.commit()
        return Change(before, revision_of(connection), adopted)


def downgrade(engine: Engine, revision: str) -> Change:
    """Downgrade to `revision` ("-1": one step back); for tests and for going back to an older release."""
    _quiet_alembic()
    from alembic import command


    with engine.connect() as connection, _locked(connection):
        before = revision_of(connection)
        _refuse_early(connection, before, revision)
        command.downgrade(config(connection), revision)
        connection.commit()
        return Change(before, revision_of(connection))


def _refuse_early(connection: Connection, before: str | None, target: str) -> None:
    """Ask every revision to be undone whether it can be, before any is: MySQL commits each DDL statement
    at once, so a refusal half-way would leave a schema its alembic_version does not describe.

    A revision module that may refuse defines `refusal(connection) -> str | None` (the reason).
    """
    from alembic.script import ScriptDirectory

    if before is None:
        return
    script = ScriptDirectory.from_config(config(connection))
    goal = script.get_revision(before).down_revision if target == "-1" else target
    for step in script.iterate_revisions(before, str(goal or "base")):
        refusal = getattr(step.module, "refusal", None)
        reason = refusal(connection) if refusal is not None else None
        if reason:
            raise RuntimeError(reason)


def _quiet_alembic() -> None:
    # Alembic narrates at INFO from its import on (plugins, dialect, each revision); the Change we return,
    # printed by `init` and logged by the start-up check, says what happened in one line.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class _locked:
    """MySQL's GET_LOCK for the database, held by this connection for the duration of the block."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        database = connection.execute(text("SELECT DATABASE()")).scalar() or ""
        self.name = f"ocr-pipeline.schema.{database}"[:64]

    def __enter__(self) -> None:
        got = self.connection.execute(text("SELECT GET_LOCK(:name, :seconds)"),
                                      {"name": self.name, "seconds": LOCK_SECONDS}).scalar()
        self.connection.commit()
        if got != 1:
            raise ConfigError(f"another schema upgrade of this database has held its lock for {LOCK_SECONDS} s")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self.connection.rollback()  # what a failed step left open; a finished one has committed
            self.connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
            self.connection.commit()
        except SQLAlchemyError:
            if kind is None:
                raise
            # The step's own error matters more; the server drops the lock with the connection anyway.
