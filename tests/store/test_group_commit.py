"""The group commit's per-batch writes: audit rows of the ops of one batch go in one INSERT
before the COMMIT, and the rows of an op that fails go nowhere, while its neighbours' commit;
on PostgreSQL two processes' batches declaring the same lock keys wait for each other instead
of deadlocking, and an op aborted by a deadlock on rows it did not declare runs again."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.app import Services
from mailserver.store import generations
from mailserver.store.audit import Action, AuditEvent, Channel, Origin
from mailserver.store.db import Database, lock_key
from tests.audit.helpers import rows
from tests.conftest import PG_URL


def _event(address: str) -> AuditEvent:
    return AuditEvent(Action.LOGIN, Origin(Channel.SYSTEM), None, address)


async def test_a_failing_op_takes_its_audit_rows_with_it(services: Services) -> None:
    async def kept(s: AsyncSession) -> str:
        await services.audit.append_in(s, _event("kept@example.test"))
        return "kept"

    async def failing(s: AsyncSession) -> None:
        await services.audit.append_in(s, _event("dropped@example.test"))
        raise ValueError("refused after its audit row")

    batches = services.db.batches
    results = await asyncio.gather(services.db.write(kept), services.db.write(failing),
                                   services.db.write(kept), return_exceptions=True)
    assert services.db.batches == batches + 1  # one batch, one commit
    assert results[0] == results[2] == "kept"
    assert isinstance(results[1], ValueError)
    assert len(await rows(services, address="kept@example.test")) == 2
    assert await rows(services, address="dropped@example.test") == []


async def test_audit_rows_outside_a_group_commit_are_written_by_the_caller(
        services: Services) -> None:
    async with services.db.session() as s, s.begin():
        await services.audit.append_in(s, _event("direct@example.test"))
    assert len(await rows(services, address="direct@example.test")) == 1



@pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")
async def test_a_deadlock_victim_runs_again_in_the_next_batch(services: Services) -> None:
    """Two processes' batches lock two rows in opposite orders, rows their ops do not declare
    (``locks=()``): PostgreSQL aborts one statement; its op runs again once its own batch
    committed, and every caller succeeds."""
    second = Database(services.db.url)

    async def both(s: AsyncSession) -> None:
        await generations.bump_in(s, generations.KEYS)
        await generations.bump_in(s, generations.DIRECTORY)

    await services.db.write(both)  # both rows exist
    locked = {generations.KEYS: asyncio.Event(), generations.DIRECTORY: asyncio.Event()}

    def crossing(db: Database, mine: int, theirs: int) -> list[Awaitable[str]]:
        async def lock_mine(s: AsyncSession) -> str:
            await generations.bump_in(s, mine)
            locked[mine].set()
            await locked[theirs].wait()
            return "first"

        async def lock_theirs(s: AsyncSession) -> str:
            await generations.bump_in(s, theirs)
            return "second"

        return [db.write(lock_mine, locks=()), db.write(lock_theirs, locks=())]

    try:
        results = await asyncio.wait_for(asyncio.gather(
            *crossing(services.db, generations.KEYS, generations.DIRECTORY),
            *crossing(second, generations.DIRECTORY, generations.KEYS)), 30)
    finally:
        await second.close()
    assert results == ["first", "second", "first", "second"]


@pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")
async def test_batches_declaring_the_same_keys_wait_instead_of_deadlocking(
        services: Services) -> None:
    """The same crossing as above, declared: the second process's batch waits for the
    first one's commit before running any op (no deadlock, no op run twice)."""
    second = Database(services.db.url)
    keys = (lock_key("test", "keys"), lock_key("test", "directory"))

    async def both(s: AsyncSession) -> None:
        await generations.bump_in(s, generations.KEYS)
        await generations.bump_in(s, generations.DIRECTORY)

    await services.db.write(both)
    ran: list[str] = []
    first_locked = asyncio.Event()

    def op(name: str, row: int, hold: bool = False) -> Callable[[AsyncSession], Awaitable[str]]:
        async def run(s: AsyncSession) -> str:
            await generations.bump_in(s, row)
            if hold:
                first_locked.set()
                await asyncio.sleep(0.5)  # the other batch starts meanwhile
            ran.append(name)
            return name

        return run

    try:
        first = [asyncio.ensure_future(services.db.write(op("a1", generations.KEYS, True),
                                                         locks=keys)),
                 asyncio.ensure_future(services.db.write(op("a2", generations.DIRECTORY),
                                                         locks=keys))]
        await first_locked.wait()
        results = await asyncio.wait_for(asyncio.gather(
            *first, second.write(op("b1", generations.DIRECTORY), locks=keys),
            second.write(op("b2", generations.KEYS), locks=keys[::-1])), 30)
    finally:
        await second.close()
    assert results == ["a1", "a2", "b1", "b2"]
    assert ran == ["a1", "a2", "b1", "b2"]  # b1 ran once, after the first batch committed


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's write lock")
async def test_a_write_waits_for_another_process_holding_sqlites_write_lock(
        services: Services) -> None:
    """An admin command or a backup in another process holds SQLite's write lock: the batch
    waits for it (off the event loop) and commits, instead of answering "database is
    locked" (a 451 to an SMTP client)."""
    other = sqlite3.connect(services.db.url.split("///", 1)[1], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")

    async def op(s: AsyncSession) -> str:
        await generations.bump_in(s, generations.KEYS)
        await services.audit.append_in(s, _event("waited@example.test"))
        return "stored"

    started = time.monotonic()
    try:
        assert await services.db.write(op) == "stored"
    finally:
        other.close()
    assert time.monotonic() - started >= 0.25
    assert len(await rows(services, address="waited@example.test")) == 1


@pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")
async def test_only_a_batch_of_flag_changes_skips_the_wal_flush(services: Services) -> None:
    """A STORE's batch commits without waiting for the WAL flush (synchronous_commit off for
    that transaction); a batch holding a message, alone or beside flag changes, waits for it
    before anyone is answered."""
    from tests.conftest import add_pro
    from tests.imap.conftest import message

    acct = await add_pro(services)
    store = services.store
    await store.append(acct.id, "INBOX", message(1))
    inbox = await store.get_folder(acct.id, "INBOX")
    sent: list[str] = []
    services.db.direct_sql_listeners.append(sent.append)
    try:
        await store.store_flags(inbox.id, [1], ["\\Seen"], "add", account_id=acct.id)
        relaxed = [q for q in sent if q.startswith("BEGIN")]
        sent.clear()
        # Both queued before the writer runs: one batch, durable since one op is.
        async def nothing(_s: AsyncSession) -> None:
            return None

        await asyncio.gather(services.db.write(nothing, durable=False),
                             services.db.write(nothing))
        mixed = [q for q in sent if q.startswith("BEGIN")]
        sent.clear()
        await store.append(acct.id, "INBOX", message(2))
        durable = [q for q in sent if q.startswith("BEGIN")]
    finally:
        services.db.direct_sql_listeners.remove(sent.append)
    assert len(relaxed) == 1 and "synchronous_commit TO off" in relaxed[0]
    assert len(mixed) == 1 and "synchronous_commit" not in mixed[0], mixed
    assert durable and not any("synchronous_commit" in q for q in durable), durable
    info = await store.list_messages(inbox.id)
    assert "\\Seen" in info[0].flags and len(info) == 2
