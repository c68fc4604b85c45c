"""Record the SQL statements a piece of code runs (tests that bound the queries of a path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from mailserver.store.db import Database

__all__ = ["recorded_statements"]


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db`` (writers and readers) meanwhile, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
