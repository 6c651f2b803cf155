"""What MySQL and MariaDB say in their own SQL, in the terms the rules use: a full-text match, an upsert,
a join order or index the planner must keep, the server's own row estimates.

Everything here compiles to MySQL syntax only; the rules build their statements from these and stay
portable SQLAlchemy otherwise."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, text
from sqlalchemy.dialects.mysql import insert, match
from sqlalchemy.orm import InstrumentedAttribute, Session

from common.adapters.db.schema import Base

S = TypeVar("S", bound=Select[Any])


def matches_words(column: InstrumentedAttribute[Any], boolean_query: str) -> ColumnElement[bool]:
    """The column's full-text index holds the words of a boolean-mode query (`+word*` each)."""
    return match(column.expression, against=boolean_query).in_boolean_mode()


def upsert(session: Session, model: type[Base], values: dict[str, Any], key: tuple[str, ...]) -> None:
    """Insert a row, or overwrite every column but the key's on the row the key already names."""
    statement = insert(model).values(**values)
    session.execute(statement.on_duplicate_key_update(
        **{name: statement.inserted[name] for name in values if name not in key}))


def in_written_order(statement: S) -> S:
    """Join the tables in the order the statement names them (STRAIGHT_JOIN): the first drives, in its index's
    order, and each row of it finds the next table's by key, so a LIMIT stops the walk early."""
    return statement.prefix_with("STRAIGHT_JOIN", dialect="mysql")


def through_index(statement: S, model: type[Base], index: str) -> S:
    """Read `model`'s table through this index (FORCE INDEX): where the planner would scan and sort instead."""
    return statement.with_hint(model, f"FORCE INDEX ({index})", dialect_name="mysql")


def if_else(condition: ColumnElement[Any], then: Any, otherwise: Any) -> ColumnElement[Any]:
    """MySQL's IF(): `then` where the condition holds, `otherwise` elsewhere."""
    return func.if_(condition, then, otherwise)


def table_rows(session: Session, table: str) -> int:
    """The server's row estimate of a table of this database (statistics, no scan; 0 if it has none)."""
    return int(session.execute(
        select(text("TABLE_ROWS")).select_from(text("information_schema.TABLES"))
        .where(text("TABLE_SCHEMA = DATABASE()"), text("TABLE_NAME = :table")).params(table=table)
    ).scalar_one_or_none() or 0)


def planned_rows(session: Session, statement: Select[Any]) -> int:
    """The planner's estimate of the rows a statement reads (EXPLAIN's largest `rows`), without running it."""
    sql = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    plan = session.execute(text(f"EXPLAIN {sql}")).mappings().all()
    return max((int(row["rows"] or 0) for row in plan), default=0)
