"""Alembic's environment: the revisions run on the connection `common.adapters.migrations` hands over, or, for
the `alembic` command line (writing a new revision), on the database the environment's settings name."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from common.adapters.db import Base
from common.config import load_settings


def run(connection: Connection) -> None:
    # compare_type: a changed column type shows in `alembic revision --autogenerate` too.
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    # `alembic upgrade --sql`: the statements for a DBA to read or run, nothing is executed.
    context.configure(url=load_settings().database_url, literal_binds=True, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = context.config.attributes.get("connection")
    if given is not None:
        run(given)
    else:
        engine = create_engine(load_settings().database_url)
        with engine.connect() as connection:
            run(connection)
        engine.dispose()
