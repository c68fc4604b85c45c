"""Direct reads (PostgreSQL): a statement marked ``direct`` runs through asyncpg and reads as
SQLAlchemy's rows; anything else in the same reader goes through SQLAlchemy; a connection
the server dropped is never reused (retried once when it sat idle, else a StoreError); the
pool bounds the connections a process opens."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import bindparam, func, select

from mailserver.app import Services
from mailserver.errors import StoreError
from mailserver.store import direct as direct_mod
from mailserver.store.direct import DirectReads, direct
from mailserver.store.models import Folder, Message
from tests.conftest import PG_URL, add_pro

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")

_FOLDERS = direct(select(Folder.id, Folder.name, Folder.uidnext)
                  .where(Folder.account_id == bindparam("a")).order_by(Folder.name))


def _reads(services: Services) -> DirectReads:
    assert services.db.direct is not None
    return services.db.direct


async def test_marked_statements_run_direct_and_read_as_rows(services: Services) -> None:
    acct = await add_pro(services)
    seen: list[str] = []
    services.db.direct_sql_listeners.append(seen.append)
    try:
        async with services.db.read() as r:
            rows = (await r.execute(_FOLDERS, {"a": acct.id})).all()
            unmarked = (await r.execute(select(func.count()).select_from(Message))).scalar()
    finally:
        services.db.direct_sql_listeners.remove(seen.append)
    assert [row.name for row in rows] == sorted(row[1] for row in rows)
    assert "INBOX" in {row.name for row in rows}
    assert all(row.uidnext == 1 for row in rows)
    assert unmarked == 0
    assert len(seen) == 1 and "FROM folders" in seen[0]  # only the marked one went direct


async def test_an_expanding_in_cannot_be_marked(services: Services) -> None:
    stmt = direct(select(Folder.id).where(Folder.id.in_(bindparam("ids", expanding=True))))
    async with services.db.read() as r:
        with pytest.raises(TypeError, match="expanding IN"):
            await r.execute(stmt, {"ids": [1]})


async def _backend_pid(services: Services) -> int:
    async with services.db.read() as r:
        pid: int = (await r.execute(direct(select(func.pg_backend_pid())))).scalar()
    return pid


async def _terminate(services: Services, pid: int) -> None:
    async with services.db.session() as s:
        await s.execute(select(func.pg_terminate_backend(pid)))
        await s.commit()
    await asyncio.sleep(0.2)


async def test_a_dropped_connection_is_not_reused(services: Services,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    acct = await add_pro(services)
    monkeypatch.setattr(direct_mod, "IDLE_RETRY_AFTER", 3600.0)  # no retry: seen failing
    pid = await _backend_pid(services)
    await _terminate(services, pid)
    with pytest.raises(StoreError, match="does not answer"):
        async with services.db.read() as r:
            await r.execute(_FOLDERS, {"a": acct.id})
    assert await _backend_pid(services) != pid  # a new connection, not the dead one


async def test_a_read_on_a_connection_dropped_while_idle_is_retried(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = await add_pro(services)
    monkeypatch.setattr(direct_mod, "IDLE_RETRY_AFTER", 0.0)  # every pooled one counts as idle
    pid = await _backend_pid(services)
    await _terminate(services, pid)  # as a PostgreSQL restart does to every idle connection
    async with services.db.read() as r:
        rows = (await r.execute(_FOLDERS, {"a": acct.id})).all()
    assert "INBOX" in {row.name for row in rows}


async def test_after_a_restart_every_pooled_connection_is_replaced(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two idle connections killed (as a restart does): the first read that finds one dead
    drops the other too, and its one retry runs on a new connection."""
    acct = await add_pro(services)
    monkeypatch.setattr(direct_mod, "IDLE_RETRY_AFTER", 0.0)
    stmt = direct(select(func.pg_backend_pid(), func.pg_sleep(0.1)))

    async def pid() -> int:
        async with services.db.read() as r:
            found: int = (await r.execute(stmt)).first()[0]
            return found

    pids = set(await asyncio.gather(pid(), pid()))
    assert len(pids) == 2
    for p in pids:
        await _terminate(services, p)
    async with services.db.read() as r:
        rows = (await r.execute(_FOLDERS, {"a": acct.id})).all()
    assert "INBOX" in {row.name for row in rows}
    assert await _backend_pid(services) not in pids


async def test_the_pool_bounds_the_connections(services: Services) -> None:
    reads = DirectReads(services.db.engine, size=1)
    stmt = direct(select(func.pg_backend_pid(), func.pg_sleep(0.2)))
    try:
        async def one() -> int:
            async with reads.reader() as r:
                pid: int = (await r.execute(stmt)).first()[0]
                return pid

        pids = await asyncio.gather(one(), one(), one())
        assert len(set(pids)) == 1  # one connection, taken in turn
    finally:
        await reads.close()


async def test_the_first_unseen_uid_is_one_probe_of_the_unseen_index(services: Services) -> None:
    """SELECT's ``[UNSEEN n]`` query repeats the partial index's predicate word for word, so
    PostgreSQL answers it from ``ix_messages_folder_unseen`` (else it walks every read
    message of the folder)."""
    from sqlalchemy.dialects import postgresql

    from mailserver.store.folder_uids import _UIDS_AND_UNSEEN

    sql = str(_UIDS_AND_UNSEEN.params(f=1).compile(dialect=postgresql.dialect(),
                                                   compile_kwargs={"literal_binds": True}))
    async with services.db.engine.connect() as conn:
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.exec_driver_sql("EXPLAIN " + sql))
    assert "ix_messages_folder_unseen" in plan, plan
