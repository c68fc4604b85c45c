"""State shared by several processes on one database (two `Services` opened on the same
database stand for two server processes): the directory's cached lookups follow account
changes made elsewhere, periodic jobs are enqueued once, and on PostgreSQL a mailbox change
committed by one process wakes the other's subscribers through LISTEN/NOTIFY, also after the
listening connection was lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.lifecycle import Actor
from mailserver.store.blob_sweep import JOB_SWEEP_BLOBS
from mailserver.store.jobs import Jobs
from mailserver.store.keys import GENERATION_RECHECK
from mailserver.store.pg_events import PgEventListener, asyncpg_dsn
from tests.conftest import DOMAIN, PG_URL, add_patient, add_pro
from tests.imap.conftest import message

needs_pg = pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")


@pytest.fixture
async def other(config: Config, services: Services) -> AsyncIterator[Services]:
    """A second process's services on the same database (opened after the first)."""
    s = await open_services(config, fast_passwords=True)
    try:
        yield s
    finally:
        await s.close()


async def test_lookups_follow_account_changes_made_by_another_process(
        services: Services, other: Services) -> None:
    address = f"dr.nouveau@{DOMAIN}"
    assert await other.directory.lookup(address) is None  # cached as unknown
    await add_pro(services, "dr.nouveau")
    await asyncio.sleep(other.directory.CACHE_RECHECK + 0.05)
    assert await other.directory.lookup(address) is not None

    patient = await add_patient(services)
    assert (await other.directory.lookup(patient.address)).status == "open"
    await services.closing.close(patient.id, Actor.agent("A1"))
    await asyncio.sleep(other.directory.CACHE_RECHECK + 0.05)
    assert (await other.directory.lookup(patient.address)).status == "closed"


async def test_a_shred_by_another_process_is_seen_by_the_recipient_check(
        services: Services, other: Services) -> None:
    patient = await add_patient(services)
    assert await other.store.keys.is_destroyed(patient.id) is False  # now cached
    await services.store.keys.destroy(patient.id)
    await asyncio.sleep(GENERATION_RECHECK + 0.05)
    assert await other.store.keys.is_destroyed(patient.id) is True
    assert (await other.delivery.look_up(patient.address))[0].shredded


async def test_a_periodic_job_is_enqueued_once_by_processes_starting_together(
        services: Services, other: Services) -> None:
    # SQLite is written by one process (serve --workers is refused there).
    both = (services, other) if PG_URL else (services, services)
    done = await asyncio.gather(*(Jobs(s.db).schedule_once(JOB_SWEEP_BLOBS, delay=60)
                                  for s in both * 3))
    assert sum(done) == 1
    assert await services.jobs.pending_count(JOB_SWEEP_BLOBS) == 1
    assert await Jobs(both[1].db).schedule_once(JOB_SWEEP_BLOBS) is False


@needs_pg
async def test_a_commit_in_one_process_wakes_the_subscribers_of_another(
        services: Services, other: Services) -> None:
    account = await add_pro(services, "dr.martin")
    listener = PgEventListener(other.db.url, other.events)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        woken = other.events.subscribe(account.id)
        woken.clear()
        await services.store.append(account.id, "INBOX", message(1))
        await asyncio.wait_for(woken.wait(), 1.0)

        # The listening connection is cut: the listener reconnects and wakes everyone once.
        conn = await asyncpg.connect(asyncpg_dsn(other.db.url))
        try:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE query LIKE 'LISTEN%' AND datname = current_database()")
        finally:
            await conn.close()
        await asyncio.sleep(0.2)
        await asyncio.wait_for(listener.connected.wait(), 15)
        woken.clear()
        await services.store.append(account.id, "INBOX", message(2))
        await asyncio.wait_for(woken.wait(), 1.0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
