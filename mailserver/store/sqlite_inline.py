"""An in-thread SQLite driver for SQLAlchemy's async engine.

Why: aiosqlite runs every statement in a helper thread; each statement then costs a thread
round trip (~0.3 ms measured here), and the group-commit writer, which runs statements one after
another, was capped at a few hundred messages per second by those hops alone. SQLite statements
on indexed rows take microseconds, so this driver runs them directly on the event-loop thread and
only moves the slow part, ``COMMIT`` (the fsync), to a worker thread.

It presents the small part of the aiosqlite API that SQLAlchemy's ``sqlite+aiosqlite`` dialect
uses (passed as ``async_creator``). Busy handling: the connection's busy timeout is 0, because
waiting for a lock inside the event-loop thread would stall the whole server; the group-commit
writer retries "database is locked" itself (see ``db.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["connect"]


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # SQLAlchemy checks this attribute before commit/rollback

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        if self._conn.in_transaction:
            # The fsync happens here: off the event loop.
            await asyncio.to_thread(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None  # type: ignore[assignment]

    def stop(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)


async def connect(path: str) -> InlineConnection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    return InlineConnection(conn)
