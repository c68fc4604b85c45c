"""Record the SQL statements a piece of code runs (tests that bound the queries of a path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from mailserver.store.db import Database

__all__ = ["recorded_statements", "recorded_round_trips"]


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db`` (writers and readers) meanwhile, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    db.direct_sql_listeners.append(seen.append)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        db.direct_sql_listeners.remove(seen.append)


_TRANSACTION_EVENTS = ("begin", "commit", "rollback", "savepoint", "release_savepoint",
                       "rollback_savepoint")


@contextmanager
def recorded_round_trips(db: Database) -> Iterator[list[str]]:
    """The statements run on ``db`` meanwhile with the transaction control that travels to
    the server (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE SAVEPOINT), in order: what a path
    costs in round trips on PostgreSQL. The asyncpg driver sends BEGIN with a transaction's
    first statement, so a transaction that ran none costs nothing; an AUTOCOMMIT connection
    (the PostgreSQL readers) sends no transaction control."""
    seen: list[str] = []
    engine = db.engine.sync_engine
    opened: set[int] = set()  # connections whose BEGIN is still to go with a first statement
    active: set[int] = set()  # connections whose transaction reached the server

    def record(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if id(conn) in opened:
            opened.discard(id(conn))
            active.add(id(conn))
            seen.append("BEGIN")
        seen.append(sql)

    def on(name: str) -> Any:
        def handler(conn: Any, *_args: Any) -> None:
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return
            if name == "begin":
                opened.add(id(conn))
            elif name in ("commit", "rollback"):
                opened.discard(id(conn))
                if id(conn) in active:
                    active.discard(id(conn))
                    seen.append(name.upper())
            else:
                seen.append(name.upper().replace("_", " "))
        return handler

    handlers = {name: on(name) for name in _TRANSACTION_EVENTS}
    event.listen(engine, "before_cursor_execute", record)
    for name, h in handlers.items():
        event.listen(engine, name, h)
    db.direct_sql_listeners.append(seen.append)  # a write batch's BEGIN (+ locks), COMMIT
    try:
        yield seen
    finally:
        db.direct_sql_listeners.remove(seen.append)
        event.remove(engine, "before_cursor_execute", record)
        for name, h in handlers.items():
            event.remove(engine, name, h)
