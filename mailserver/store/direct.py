"""Reads of the hot paths straight through asyncpg (PostgreSQL), bypassing SQLAlchemy's
execution layer.

Why: a small read through a pooled SQLAlchemy connection costs ~290 µs of Python CPU here
(pool checkout and return ~130, statement execution ~160); through asyncpg on a connection
already at hand, ~70. The IMAP polls, folder rows and FETCH rows are such reads, several a
command.

How: a statement marked with :func:`direct` (a prebuilt Core ``SELECT`` whose parameters are
named ``bindparam``s, no expanding ``IN``) is compiled once per process for the PostgreSQL
dialect (the same SQL text SQLAlchemy would send, ``$n`` placeholders) and run with asyncpg's
``fetch`` on a connection of a small pool of autocommit connections (asyncpg prepares it once
per connection). Rows come back as :class:`DirectRow` (index, name and attribute access, as
SQLAlchemy's ``Row``); the result has the few methods the readers use (``all``, ``first``,
``one``, ``scalar``, ``scalar_one``, ``scalars``). Any other statement given to the same
reader runs through SQLAlchemy on a connection opened for it. On SQLite, :class:`Database`
keeps SQLAlchemy for everything (its reads are in-process already).

Failures: a connection that fails is dropped, never pooled again, and so are the idle ones
(a PostgreSQL restart kills them all); the caller gets a :class:`StoreError` ("database does
not answer"), which the IMAP layer maps to ``NO [UNAVAILABLE]``. A read that fails on a
connection that sat idle is retried once on a new connection: reads are idempotent.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Executable, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailserver.errors import StoreError

__all__ = ["direct", "DirectReads", "DirectRow", "DirectResult"]

S = TypeVar("S", bound=Executable)

_OPTION = "mssante_direct"


def direct(stmt: S) -> S:
    """``stmt`` marked to run straight through asyncpg on PostgreSQL (see the module
    docstring); unchanged otherwise (SQLite, or a reader without direct reads)."""
    return stmt.execution_options(**{_OPTION: True})


class DirectRow(asyncpg.Record):  # type: ignore[misc]
    """A row as asyncpg decodes it, readable as SQLAlchemy's ``Row``: ``r[0]``, ``r.uid``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class DirectResult:
    """The part of SQLAlchemy's ``Result`` interface the store's readers use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[DirectRow]) -> None:
        self._rows = rows

    def all(self) -> list[DirectRow]:
        return self._rows

    def first(self) -> DirectRow | None:
        return self._rows[0] if self._rows else None

    def one(self) -> DirectRow:
        if len(self._rows) != 1:
            raise StoreError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> DirectResult:
        return DirectResult([r[0] for r in self._rows])

    def __iter__(self) -> Iterator[DirectRow]:
        return iter(self._rows)


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    binds: tuple[Callable[[Any], Any] | None, ...]

    def args(self, params: Mapping[str, Any] | None) -> list[Any]:
        out = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = params[name] if params is not None and name in params \
                else self.defaults[name]
            out.append(process(value) if process is not None else value)
        return out


def _plan(stmt: Executable, dialect: Dialect) -> _Plan | None:
    """The SQL and parameter order of a :func:`direct` statement, or None (not marked)."""
    if not stmt.get_execution_options().get(_OPTION):
        return None
    if not isinstance(stmt, Select):
        raise TypeError("direct(): only SELECT statements")
    compiled = stmt.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:
        raise TypeError("direct(): an expanding IN cannot be prepared; use = ANY(array)")
    names = tuple(compiled.positiontup or ())
    binds = tuple(compiled.binds[n].type.bind_processor(dialect) for n in names)
    defaults = {n: compiled.binds[n].effective_value for n in names
                if not compiled.binds[n].required}
    for column in stmt.selected_columns:
        if column.type.result_processor(dialect, None) is not None:
            raise TypeError(f"direct(): {column} needs SQLAlchemy's result processing")
    return _Plan(compiled.string, names, defaults, binds)


_LOST = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
         asyncpg.InterfaceError, asyncpg.exceptions.CannotConnectNowError)

IDLE_RETRY_AFTER = 5.0
"""Seconds a pooled connection may sit unused before a failure on it is retried once."""


class DirectReads:
    """A process's pool of autocommit asyncpg connections and compiled plans."""

    def __init__(self, engine: AsyncEngine, *, size: int = 10,
                 listeners: list[Callable[[str], None]] | None = None) -> None:
        self.engine = engine
        self.listeners = listeners if listeners is not None else []
        self._dialect = engine.dialect
        self._connect_args = _connect_args(engine.url, engine.dialect)
        self._size = max(1, size)
        self._idle: deque[tuple[asyncpg.Connection, float]] = deque()
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._plans: dict[int, tuple[Executable, _Plan]] = {}

    def plan(self, stmt: Executable) -> _Plan | None:
        hit = self._plans.get(id(stmt))
        if hit is not None and hit[0] is stmt:
            return hit[1]
        plan = _plan(stmt, self._dialect)
        if plan is not None:  # marked statements are module constants: a bounded set
            self._plans[id(stmt)] = (stmt, plan)
        return plan

    def reader(self) -> DirectReader:
        return DirectReader(self)

    async def acquire(self) -> tuple[asyncpg.Connection, float]:
        while True:
            if self._idle:
                return self._idle.pop()
            if self._open < self._size:
                self._open += 1
                try:
                    conn = await asyncpg.connect(**self._connect_args, record_class=DirectRow)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
                return conn, time.monotonic()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake()  # pass the turn on
                raise

    def release(self, conn: asyncpg.Connection, *, healthy: bool) -> None:
        if healthy and not conn.is_closed() and not conn.is_in_transaction():
            self._idle.append((conn, time.monotonic()))
        else:
            self._open -= 1
            conn.terminate()
        self._wake()

    def drop_idle(self) -> None:
        """Close every pooled connection (one was found dead: a server restart kills all)."""
        while self._idle:
            conn, _at = self._idle.pop()
            self._open -= 1
            conn.terminate()
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        while self._idle:
            conn, _at = self._idle.pop()
            self._open -= 1
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:  # noqa: BLE001 - closing anyway
                conn.terminate()


def _connect_args(url: URL, dialect: Dialect) -> dict[str, Any]:
    """asyncpg.connect()'s arguments for the engine's URL (SQLAlchemy's own translation,
    minus what only its dialect understands)."""
    _args, kwargs = dialect.create_connect_args(url)
    accepted = set(inspect.signature(asyncpg.connect).parameters)
    return {k: v for k, v in kwargs.items() if k in accepted}


class DirectReader:
    """``async with`` one pooled connection: ``execute`` as SQLAlchemy's ``AsyncConnection``
    (see the module docstring)."""

    def __init__(self, reads: DirectReads) -> None:
        self._reads = reads
        self._conn: asyncpg.Connection | None = None
        self._since = 0.0
        self._sa: AsyncConnection | None = None

    async def __aenter__(self) -> DirectReader:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._conn is not None:
            self._reads.release(self._conn, healthy=True)  # a failed one was released already
            self._conn = None
        if self._sa is not None:
            await self._sa.close()
            self._sa = None

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None
                      ) -> Any:
        plan = self._reads.plan(stmt)
        if plan is None:
            if self._sa is None:
                self._sa = await self._reads.engine.connect()
            return await self._sa.execute(stmt, params)
        args = plan.args(params)
        for listener in self._reads.listeners:
            listener(plan.sql)
        for attempt in (0, 1):
            idle = 0.0
            try:
                if self._conn is None:
                    self._conn, self._since = await self._reads.acquire()
                idle = time.monotonic() - self._since
                rows: list[DirectRow] = await self._conn.fetch(plan.sql, *args)
                self._since = time.monotonic()
                break
            except _LOST as exc:
                if self._conn is not None:
                    self._reads.release(self._conn, healthy=False)
                    self._conn = None
                self._reads.drop_idle()
                if attempt or idle < IDLE_RETRY_AFTER:
                    raise StoreError(f"database does not answer: {type(exc).__name__}") \
                        from exc
                continue
            except asyncpg.PostgresError as exc:
                raise StoreError(f"read failed: {type(exc).__name__}") from exc
        return DirectResult(rows)
