"""MySQL adapter: the schema's models (schema), connections, transactions and replica reads (sessions), and
MySQL's own SQL in the rules' terms (dialect). Schema changes are the Alembic revisions of migrations/."""

from common.adapters.db.schema import ApiKey, Base, Document, Job, JobChunk, LongText, Page, utcnow
from common.adapters.db.sessions import (
    create_schema,
    dispose_engines,
    get_engine,
    read,
    session_scope,
)

__all__ = [
    "ApiKey", "Base", "Document", "Job", "JobChunk", "LongText", "Page", "utcnow",
    "create_schema", "dispose_engines", "get_engine", "read", "session_scope",
]
