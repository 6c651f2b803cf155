"""Connections to MySQL: one pooled engine per database (its schema revision checked once), transactions,
reads that may go to the read replica, and creating or upgrading the schema."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from common import blocking
from common.adapters import migrations
from common.config import Settings
from common.errors import ConfigError, DatabaseUnavailable
from common.logging import get_logger

log = get_logger()

_engines: dict[str, Engine] = {}
# Databases whose schema revision this process has checked (see _check_schema).
_checked: set[str] = set()
# What a client is told; the driver's words (host, port, SQL) go to the log as the error's detail.
_UNAVAILABLE = "the database is unavailable; try again later"
_CONNECT_ARGS = {"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30}


def get_engine(settings: Settings) -> Engine:
    """One pooled engine per process and database, created on first use, its schema revision checked once."""
    blocking.check("mysql")
    url = settings.database_url
    engine = _engines.get(url)
    if engine is None:
        engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600, connect_args=_CONNECT_ARGS)
        _engines[url] = engine
    if url not in _checked:
        # Until it passes, every use checks again: a refused process recovers once `init` has run.
        _check_schema(engine, settings)
        _checked.add(url)
    return engine


def dispose_engines() -> None:
    """Close pooled connections (tests and process shutdown)."""
    for engine in [*_engines.values(), *_replicas.values()]:
        engine.dispose()
    _engines.clear()
    _checked.clear()
    _replicas.clear()
    _passed_over_until.clear()


T = TypeVar("T")
# Replica engines by URL (no schema check: a replica is read-only and follows the primary's schema).
_replicas: dict[str, Engine] = {}
# Until when (time.monotonic) a replica that failed or lagged is passed over, by URL.
_passed_over_until: dict[str, float] = {}


def read(settings: Settings, work: Callable[[Session], T], purpose: str) -> T:
    """Read-only `work` on the read replica when one is set, up and caught up; on the primary otherwise.

    Caught up means the replica has applied every transaction the primary had committed when the read began
    (MariaDB's MASTER_GTID_WAIT on the primary's gtid_binlog_pos; MySQL's WAIT_FOR_EXECUTED_GTID_SET on its
    gtid_executed), so a caller reads its own writes there too. The connection, the wait and each statement
    are bounded by MYSQL_REPLICA_TIMEOUT: a replica that lags, hangs or is down costs one timeout, then the
    primary answers (and runs `work` from the start: it only reads), and the replica is passed over for
    MYSQL_REPLICA_RETRY_SECONDS so the requests after it do not pay that timeout again.
    """
    blocking.check("mysql")
    url = settings.replica_url
    if url is None or time.monotonic() < _passed_over_until.get(url, 0.0):
        with session_scope(settings) as session:
            return work(session)
    started = time.monotonic()
    try:
        with session_scope(settings) as session:
            mariadb = bool(getattr(session.get_bind().dialect, "is_mariadb", False))
            position = session.execute(text(
                "SELECT @@global.gtid_binlog_pos" if mariadb else "SELECT @@global.gtid_executed")).scalar() or ""
        replica = _replica_engine(settings, url)
        with replica.connect() as connection, Session(bind=connection, expire_on_commit=False) as session:
            waited = connection.execute(
                text("SELECT MASTER_GTID_WAIT(:position, :seconds)" if mariadb
                     else "SELECT WAIT_FOR_EXECUTED_GTID_SET(:position, :seconds)"),
                {"position": position, "seconds": settings.mysql_replica_timeout},
            ).scalar()
            if waited == 0:
                # Closing the session ends the read's transaction and detaches what it loaded, still loaded.
                return work(session)
            reason, detail = "lagging", f"not at the primary's position {position} after the wait"
    except (OperationalError, InterfaceError) as e:
        reason, detail = "unavailable", str(e.orig or e)
    _passed_over_until[url] = time.monotonic() + settings.mysql_replica_retry_seconds
    log.warning("db.replica_passed_over", purpose=purpose, reason=reason, detail=detail[:300],
                seconds=round(time.monotonic() - started, 3), retry_after=settings.mysql_replica_retry_seconds)
    with session_scope(settings) as session:
        return work(session)


def _replica_engine(settings: Settings, url: str) -> Engine:
    engine = _replicas.get(url)
    if engine is None:
        timeout = settings.mysql_replica_timeout
        # The socket waits a little longer than the GTID wait, so the wait's own "timed out" answer arrives.
        engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600, connect_args={
            "connect_timeout": timeout, "read_timeout": timeout + 0.5, "write_timeout": timeout + 0.5})
        _replicas[url] = engine
    return engine


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error; driver outages become DatabaseUnavailable."""
    factory = sessionmaker(bind=get_engine(settings), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except (OperationalError, InterfaceError) as e:
        session.rollback()
        raise DatabaseUnavailable(_UNAVAILABLE, detail=str(e.orig or e)) from e
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def create_schema(settings: Settings, revision: str = "head") -> migrations.Change:
    """Create the schema or upgrade it to the code's revision (or `revision`): what `ocr-pipeline init` runs.

    Alembic revisions in common/adapters/migrations; a database made before them is recognised and stamped.
    """
    # A connection of its own, outside the pool: the schema check of get_engine must not stand in the way.
    engine = create_engine(settings.database_url, poolclass=NullPool, connect_args=_CONNECT_ARGS)
    try:
        return migrations.upgrade(engine, revision)
    except OperationalError as e:
        raise DatabaseUnavailable("cannot create or upgrade the schema: the database is unavailable",
                                  detail=str(e.orig or e)) from e
    finally:
        engine.dispose()


def _check_schema(engine: Engine, settings: Settings) -> None:
    """On a process's first use of a database: one behind the code is upgraded (DB_AUTO_UPGRADE) or refused."""
    try:
        with engine.connect() as conn:
            found = migrations.revision_of(conn)
            made_before_migrations = found is None and migrations.has_tables(conn)
    except (OperationalError, InterfaceError) as e:
        raise DatabaseUnavailable(_UNAVAILABLE, detail=str(e.orig or e)) from e
    if found == migrations.HEAD:
        return
    if not migrations.is_behind(found):
        log.warning("db.schema_newer_than_code", revision=found, code_revision=migrations.HEAD)
        return
    if settings.db_auto_upgrade:
        try:
            change = migrations.upgrade(engine)
        except OperationalError as e:
            raise DatabaseUnavailable("cannot upgrade the schema: the database is unavailable",
                                      detail=str(e.orig or e)) from e
        log.info("db.schema_upgraded", before=change.before, after=change.after, adopted=change.adopted)
        return
    state = ("made before schema migrations" if made_before_migrations
             else "empty" if found is None else f"at revision {found}")
    raise ConfigError(
        f"the database schema is {state}, and this code needs revision {migrations.HEAD}: run "
        "`ocr-pipeline init` (or `python -m common init`) with the same settings, or set DB_AUTO_UPGRADE=true")
