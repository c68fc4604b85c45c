"""Database engine, sessions and group commit.

Theory of operation (group commit): writers never commit on their own. ``Database.write(op)``
queues ``op`` (an async function taking a session) and waits. One writer task drains the queue:
it opens a transaction, takes the batch's write locks (PostgreSQL: :meth:`Database.write`), runs
the queued ops one after the other (no SAVEPOINT each: when one fails, its caller gets the
exception, the transaction is rolled back and the other ops run again in a new one), then
commits once for the whole batch and resolves the waiting callers. While a batch commits, new
ops accumulate and form the next batch, so the number of fsyncs grows with batches, not with
messages, and throughput grows with concurrency.

A caller is answered only after the commit returned: that is the moment a message counts as
durably stored (SMTP 250). SQLite runs in WAL mode with ``synchronous=FULL`` so a commit is
fsync'd; PostgreSQL uses its defaults (``synchronous_commit=on``).

Callbacks registered with :func:`after_commit` run once the batch is committed (e.g. waking IMAP
IDLE sessions). On PostgreSQL, notifications registered with :func:`notify_on_commit` are sent
by one ``pg_notify`` statement just before the batch's ``COMMIT``: PostgreSQL delivers them to
the listeners only when (and if) that transaction commits. Rows given to :func:`insert_on_commit`
(the audit trail's) are written by one multi-row INSERT per table just before that ``COMMIT``
(one statement per batch, not one per op); an op that fails takes its rows with it.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from types import TracebackType
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    ARRAY,
    Executable,
    Select,
    Table,
    Text,
    bindparam,
    event,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from mailserver import metrics
from mailserver.errors import MssanteError, StorageFull, StoreError
from mailserver.store import sqlite_inline
from mailserver.store.direct import DirectReads
from mailserver.store.models import Base

__all__ = ["Database", "account_lock", "after_commit", "notify_on_commit", "insert_on_commit",
           "is_storage_full", "lock_key",
           "migration_engine"]

log = logging.getLogger(__name__)
T = TypeVar("T")

class Reader(Protocol):
    """What :meth:`Database.read` gives: ``async with`` it, ``execute`` Core statements."""

    async def __aenter__(self) -> Reader: ...

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None, /) -> None: ...

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None, /
                      ) -> Any: ...


Op = Callable[[AsyncSession], Awaitable[Any]]
Pending = tuple[Op, "asyncio.Future[Any]", "tuple[int, ...] | None", bool]
"""A queued write: the op, its caller's future, its lock keys (None: undeclared), whether its
commit must be flushed to disk before its caller is answered."""

_LOCK_SPACE = 0x6D73  # the classid of the write locks (pg_advisory_xact_lock(int4, int4))


def lock_key(kind: str, value: object) -> int:
    """A write's lock key (:meth:`Database.write`): a 31-bit hash of ``kind`` and ``value``.
    Two values sharing a key only wait for each other."""
    digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def account_lock(account_id: int) -> int:
    """The lock key of everything a mailbox owns: its folders, messages, conversations."""
    return lock_key("account", account_id)


_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL = "53100"  # PostgreSQL SQLSTATE disk_full


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, a DBAPIError's driver error)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is x for x in seen):
            continue
        seen.append(e)
        orig = getattr(e, "orig", None)  # SQLAlchemy DBAPIError wraps the driver's error
        todo += [orig if isinstance(orig, BaseException) else None, e.__cause__, e.__context__]
    return seen


def _sqlstates(exc: BaseException) -> set[object]:
    return {getattr(e, a, None) for e in _chain(exc) for a in ("sqlstate", "pgcode")}


def is_storage_full(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it wraps) says the storage has no space left:
    ENOSPC/EDQUOT, SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL 53100."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, sqlite3.Error) and (
                getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL
                or "database or disk is full" in str(e)):
            return True
    return _PG_DISK_FULL in _sqlstates(exc)


SQLITE_BUSY_WAIT = 15.0
"""Seconds a write batch waits for another process holding SQLite's write lock before its
callers get a StoreError (SMTP 451): the server's own connection never blocks (busy timeout 0,
``sqlite_inline``), the batch sleeps and runs again."""


def _sqlite_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY/SQLITE_LOCKED) anywhere in ``exc``'s chain."""
    return any(isinstance(e, sqlite3.OperationalError) and (
        (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF in (5, 6)
        or "database is locked" in str(e))
        for e in _chain(exc))


_PG_CONFLICTS = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
_CONFLICT_RETRIES = 3


def _store_error(exc: BaseException, text: str) -> StoreError:
    """The domain error for a failed write: :class:`StorageFull` when space ran out."""
    error = StorageFull(text) if is_storage_full(exc) else StoreError(text)
    error.__cause__ = exc
    return error


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the transaction holding ``session`` commits."""
    session.info.setdefault("after_commit", []).append(callback)


def notify_on_commit(session: AsyncSession, channel: str, payload: str) -> None:
    """PostgreSQL: ``NOTIFY channel, payload`` with the transaction holding ``session`` (a
    group-committed write); nothing on SQLite (one process)."""
    session.info.setdefault("notify", set()).add((channel, payload))


def insert_on_commit(session: AsyncSession, table: Table, rows: list[dict[str, object]]) -> bool:
    """Insert ``rows`` into ``table`` with the group-committed transaction holding ``session``,
    in one INSERT with the other ops' rows just before the batch's COMMIT. False (nothing
    kept) when ``session`` is not a group-committed write's: the caller inserts them itself."""
    deferred: list[tuple[Table, list[dict[str, object]]]] | None = session.info.get("deferred")
    if deferred is None:
        return False
    deferred.append((table, rows))
    return True


async def _insert_deferred(session: AsyncSession,
                           deferred: list[tuple[Table, list[dict[str, object]]]],
                           notes: list[tuple[str, str]] | None = None) -> None:
    """Insert the rows given to :func:`insert_on_commit`; on PostgreSQL (``notes`` not None), in
    the statement that sends the notifications (one round trip: ``WITH d0 AS (INSERT ...
    SELECT FROM unnest(...)) SELECT pg_notify(...)``; a data-modifying WITH runs whether or
    not it is read).

    On PostgreSQL the rows travel as one array per column: the statement's text is the same
    whatever the number of rows, so it is compiled and prepared once (a multi-row ``VALUES``
    is a new statement for every row count: compiling it was an eighth of a worker's CPU
    under SMTP load)."""
    tables: dict[Table, list[dict[str, object]]] = {}
    for table, rows in deferred:
        tables.setdefault(table, []).extend(rows)
    parts: list[tuple[Table, tuple[str, ...]]] = []
    params: dict[str, object] = {}
    for n, (table, rows) in enumerate(tables.items()):
        if not rows:
            continue
        columns = tuple(rows[0])
        if notes is None or any(tuple(r) != columns for r in rows):  # None: SQLite
            await session.execute(insert(table), rows)
            continue
        parts.append((table, columns))
        params.update({f"d{n}_{c}": [r[c] for r in rows] for c in columns})
    if notes:
        params.update({"c": [c for c, _ in notes], "p": [p for _, p in notes]})
    if parts or notes:
        conn = await session.connection()  # Core: no ORM execution for a statement of columns
        await conn.execute(_deferred_statement(tuple(parts), bool(notes)), params)


@functools.lru_cache(maxsize=64)
def _deferred_statement(parts: tuple[tuple[Table, tuple[str, ...]], ...],
                        notify: bool) -> Select[Any]:
    """PostgreSQL: one statement inserting each part's rows from per-column arrays (bind
    parameters ``d<n>_<column>``), then sending the notifications when ``notify``."""
    out: Select[Any] = _NOTIFY if notify else select(literal_column("1"))
    for n, (table, columns) in enumerate(parts):
        arrays = [bindparam(f"d{n}_{c}", type_=ARRAY(table.c[c].type)) for c in columns]
        rows = func.unnest(*arrays).table_valued(*columns).render_derived(name=f"r{n}")
        out = out.add_cte(insert(table).from_select(
            list(columns), select(*(rows.c[c] for c in columns))).cte(f"d{n}"))
    return out


_NOTES = func.unnest(bindparam("c", type_=ARRAY(Text)),
                     bindparam("p", type_=ARRAY(Text))).table_valued("c", "p").render_derived(
    name="n")
_NOTIFY = select(func.pg_notify(_NOTES.c.c, _NOTES.c.p)).select_from(_NOTES)


class Database:
    """Owns the engine, the session factory and the group-commit writer."""

    def __init__(self, url: str, *, group_commit_max: int = 256, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.group_commit_max = max(1, group_commit_max)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ":memory:"
            kwargs["async_creator"] = partial(sqlite_inline.connect, path)
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 10
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            event.listen(self.engine.sync_engine, "checkin", _mark_checkin)
            event.listen(self.engine.sync_engine, "checkout", _ping_if_idle)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside a transaction on PostgreSQL: no BEGIN/ROLLBACK round trips. Under READ
        # COMMITTED each statement takes its own snapshot anyway, so a read session sees the
        # same data either way. SQLite keeps its transaction (one snapshot for the session).
        readers = (self.engine if self.is_sqlite
                   else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        self.readers = async_sessionmaker(readers, expire_on_commit=False)
        # Write batches on PostgreSQL: the transaction is ours (_begin/_end), so that BEGIN
        # travels with the batch's lock statement.
        self._batch_sessions = self.readers if not self.is_sqlite else self.sessions
        self._read_engine = readers
        #: Observers of the SQL sent past SQLAlchemy (the direct reads, the batches' BEGIN
        #: and COMMIT on PostgreSQL), which its events do not see: statement counts, tracing.
        self.direct_sql_listeners: list[Callable[[str], None]] = []
        self.direct = None if self.is_sqlite else DirectReads(
            readers, listeners=self.direct_sql_listeners)
        self._pending: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._conflicts: dict[asyncio.Future[Any], int] = {}
        self.batches = 0
        self.ops = 0

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self.direct is not None:
            await self.direct.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers a query on one of our tables
        (readiness: a missing or unreadable database fails here, not only at the next write)."""
        query: Select[Any] = (select(literal_column("1"))
                              .select_from(Base.metadata.tables["jobs"]).limit(1))
        try:
            async with self.sessions() as s:
                await s.execute(query)
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            raise StoreError(f"database does not answer: {type(exc).__name__}") from exc

    def session(self) -> AsyncSession:
        """A session for reads (and for writes that must not be batched, like admin tools)."""
        return self.sessions()

    def reader(self) -> AsyncSession:
        """A session for reads only (see ``readers`` above): never commit through it."""
        return self.readers()

    def read(self) -> Reader:
        """A connection for reads only, as :meth:`reader` but without the ORM session: about
        half the CPU a statement on the hot read paths (IMAP STATUS, SELECT, polls), for
        statements that select columns, not mapped objects. On PostgreSQL, the statements
        marked :func:`~mailserver.store.direct.direct` run straight through asyncpg (a
        fifth of the CPU of SQLAlchemy's execution)."""
        if self.direct is not None:
            return self.direct.reader()
        return self._read_engine.connect()

    async def write(self, op: Callable[[AsyncSession], Awaitable[T]], *,
                    locks: Iterable[int] | None = None, durable: bool = True) -> T:
        """Run ``op`` in a group-committed transaction; return its result after commit.

        ``locks``: the keys (:func:`lock_key`, :func:`account_lock`) of the rows ``op`` locks
        that another write may lock too (``()`` or None: none declared). On PostgreSQL a batch
        takes the keys of all its ops, sorted, before running any (``pg_advisory_xact_lock``):
        two processes' batches touching the same mailboxes then wait for each other instead of
        locking their rows in opposite orders (a deadlock costs a second, PostgreSQL's
        ``deadlock_timeout``, and a retry); batches with disjoint keys run side by side. An op
        that declares nothing takes no lock up front: if it ever deadlocks, it is retried
        (:meth:`_retry_later`). (A global key taken by every batch, exclusively by those with an
        undeclared op, would rule that out too, but would stop every write of every process
        for as long as a long undeclared one, a purge, runs.)

        ``durable=False``: the op only changes state a mail server may forget on a power cut
        (flags, \\Recent marks, caches), never a message: when every op of a batch says so,
        PostgreSQL commits it without waiting for the WAL flush (``synchronous_commit`` off
        for that transaction; flushed within ~0.6 s by the WAL writer, and by any later
        durable commit, the WAL being one sequence). A crash of PostgreSQL or of the machine
        may lose the last such changes (never a message, never out of order), as Dovecot's
        default ``mail_fsync = optimized`` may for flags. What the client sees in the
        meantime is consistent: the commit is visible to every session at once. SQLite: no
        difference.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((op, fut, None if locks is None else tuple(locks), durable))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain(), name="group-commit")
        return await fut

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.group_commit_max]
            del self._pending[: len(batch)]
            await self._run_batch(batch)

    async def _begin(self, session: AsyncSession, batch: list[Pending]) -> Any:
        """PostgreSQL: open the batch's transaction and take its write locks (see
        :meth:`write`) in one round trip, ``BEGIN; SELECT pg_advisory_xact_lock(...); ...``
        (simple query protocol: the keys are integers of ours), on the session's connection
        (which SQLAlchemy keeps in autocommit: it sends no BEGIN of its own); the asyncpg
        connection, for :meth:`_end`. SQLite: None (SQLAlchemy begins the transaction)."""
        if self.is_sqlite:
            return None
        live = [job for job in batch if not job[1].cancelled()]
        keys = sorted({key for _op, _fut, locks, _durable in live if locks for key in locks})
        relaxed = bool(live) and not any(durable for *_job, durable in live)
        conn = await session.connection()
        raw = (await conn.get_raw_connection()).driver_connection
        await self._send(raw, "BEGIN" + (";SET LOCAL synchronous_commit TO off" if relaxed
                                           else "") + "".join(
            f";SELECT pg_advisory_xact_lock({_LOCK_SPACE},{int(k)})" for k in keys))
        return raw

    async def _send(self, raw: Any, sql: str) -> None:
        """Send ``sql`` on the batch's asyncpg connection, past SQLAlchemy (its listeners told)."""
        for listener in self.direct_sql_listeners:
            listener(sql)
        await raw.execute(sql)

    async def _end(self, session: AsyncSession, raw: Any, *, commit: bool) -> None:
        """Commit or roll back the batch's transaction (``raw``: from :meth:`_begin`). On
        PostgreSQL the ORM's pending changes are flushed first, and a connection whose
        transaction could not be ended is dropped, never pooled inside a transaction."""
        if raw is None:
            await (session.commit() if commit else session.rollback())
            return
        try:
            if commit:
                await session.flush()
            await self._send(raw, "COMMIT" if commit else "ROLLBACK")
        except BaseException:
            if raw.is_in_transaction():
                try:
                    await self._send(raw, "ROLLBACK")
                except Exception:  # noqa: BLE001 - the connection is dropped below
                    await (await session.connection()).invalidate()
            await session.rollback()
            raise
        await (session.commit() if commit else session.rollback())  # the ORM's state only

    def _retry_later(self, exc: SQLAlchemyError, job: Pending, retry: list[Pending]) -> bool:
        """An op chosen as a deadlock's victim (PostgreSQL: two processes' batches lock the
        same rows in opposite orders, which undeclared locks still allow) runs again at the
        head of the next batch, once this one committed and released its locks (up to 3
        times)."""
        if self.is_sqlite or not _PG_CONFLICTS & _sqlstates(exc):
            return False
        fut = job[1]
        tries = self._conflicts.get(fut, 0)
        if tries >= _CONFLICT_RETRIES:
            return False
        self._conflicts[fut] = tries + 1
        retry.append(job)
        log.info("store: write op retried after a lock conflict")
        return True

    async def _run_batch(self, batch: list[Pending]) -> None:
        """Run the batch's ops in one transaction and commit once. No SAVEPOINT per op (two
        round trips each): when an op fails, the transaction is rolled back, the op's caller
        gets the failure and the other ops run again in a new transaction (the ops of a batch
        never depend on one another, and a failure is the rare case)."""
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        callbacks: list[Callable[[], None]] = []
        retry: list[Pending] = []
        todo = batch
        waited, delay = 0.0, 0.01
        try:
            while True:
                todo = [job for job in todo if not job[1].cancelled()]
                if not todo:
                    break
                try:
                    async with self._batch_sessions() as session:
                        raw = await self._begin(session, todo)
                        try:
                            results, failed = await self._attempt(session, todo, retry)
                        except BaseException:
                            if raw is not None and raw.is_in_transaction():
                                await self._end(session, raw, commit=False)
                            raise
                        if failed is not None:
                            await self._end(session, raw, commit=False)
                            todo = todo[:failed] + todo[failed + 1:]
                            continue
                        callbacks = list(session.info.pop("after_commit", []))
                        await self._end(session, raw, commit=True)
                except Exception as exc:
                    if not (self.is_sqlite and _sqlite_busy(exc)) or waited >= SQLITE_BUSY_WAIT:
                        raise
                    # Another process (an admin command, a backup) holds SQLite's write lock:
                    # wait for it off the event loop, then run the batch again.
                    await asyncio.sleep(delay)
                    waited, delay = waited + delay, min(delay * 2, 0.2)
                    continue
                outcomes.extend((job[1], result, None) for job, result in zip(
                    todo, results, strict=True))
                break
        except Exception as exc:  # noqa: BLE001 - the whole batch failed to commit
            log.error("store: group commit failed: %s", type(exc).__name__)
            error = _store_error(exc, "commit failed")
            for job in batch:
                self._conflicts.pop(job[1], None)
                if not job[1].done():
                    job[1].set_exception(error)
            return
        self._pending[:0] = retry
        self.batches += 1
        self.ops += len(outcomes)
        metrics.STORE_BATCH_OPS.observe(len(outcomes))
        for fut, result, failure in outcomes:
            self._conflicts.pop(fut, None)
            if fut.done():
                continue
            if failure is None:
                fut.set_result(result)
            else:
                fut.set_exception(failure)
        for cb in callbacks:
            try:
                cb()
            except Exception:  # noqa: BLE001
                log.exception("store: after-commit callback failed")

    async def _attempt(self, session: AsyncSession, jobs: list[Pending],
                       retry: list[Pending]) -> tuple[list[Any], int | None]:
        """Run ``jobs`` in ``session``'s transaction, up to the commit: (their results, None),
        or ([], the index of the first that failed), its failure given to its caller (or the
        op queued for the next batch: :meth:`_retry_later`)."""
        session.info["deferred"] = []
        results: list[Any] = []
        for n, job in enumerate(jobs):
            try:
                results.append(await job[0](session))
                continue
            except (MssanteError, ValueError) as exc:
                failure: BaseException = exc
            except SQLAlchemyError as exc:
                if self.is_sqlite and _sqlite_busy(exc):
                    raise  # the whole batch waits and runs again (_run_batch)
                if self._retry_later(exc, job, retry):
                    return [], n
                log.warning("store: write op failed: %s", type(exc).__name__)
                failure = _store_error(exc, type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - reported to the waiting caller
                log.exception("store: write op crashed")
                failure = _store_error(exc, "internal error")
            self._conflicts.pop(job[1], None)
            if not job[1].done():
                job[1].set_exception(failure)
            return [], n
        notes = sorted(session.info.pop("notify", ()))
        await _insert_deferred(session, session.info.pop("deferred"),
                               None if self.is_sqlite else notes)
        return results, None


PING_AFTER_IDLE = 10.0
"""Seconds a pooled PostgreSQL connection may sit unused before it is pinged at checkout."""


def _mark_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["checkin"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling, only for connections idle a while (a ping per
    checkout would be one more round trip per read): a connection dropped while idle (server
    restart, idle timeout) is replaced before use. One used seconds ago is trusted; if it died
    meanwhile, the failing statement invalidates the pool (SQLAlchemy's disconnect handling)."""
    if time.monotonic() - record.info.get("checkin", 0.0) < PING_AFTER_IDLE:
        return
    try:
        dbapi_conn.ping()
    except Exception as exc:  # noqa: BLE001 - any failure: take another connection
        raise DisconnectionError(type(exc).__name__) from exc


def migration_engine(url: str) -> AsyncEngine:
    """An engine for schema changes (``mailserver.migrations``): no pool; on SQLite foreign keys
    are off (set before any transaction: a table rebuilt by a migration must not cascade) and a
    lock is waited for (start-up, not the serving loop)."""
    kwargs: dict[str, Any] = {"poolclass": NullPool}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ":memory:"
        kwargs["async_creator"] = partial(sqlite_inline.connect, path)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_migration_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_begin_immediate(conn: Any) -> None:
    # The write lock from the start: two processes upgrading at once wait for each other
    # (busy_timeout) instead of failing to promote a read transaction.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_migration_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The connection is in autocommit mode (isolation_level=None, see sqlite_inline): SQLAlchemy,
    # not the sqlite3 module, issues BEGIN, so SAVEPOINTs work (SQLAlchemy SQLite dialect notes,
    # "Serializable isolation / Savepoints").
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")
