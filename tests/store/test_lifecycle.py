"""Lifecycle transitions through the directory on a real database (SQLite, or PostgreSQL with
MSSANTE_TEST_DATABASE_URL): the status and its history row together, refusals, the opening
job driven by a controllable clock, and two sets of services opening at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.directory.opening import OpeningJob
from mailserver.errors import TransitionRefused
from mailserver.lifecycle import PARIS, Actor, Event, Refusal, State
from mailserver.store.lifecycle import AccountTransition
from mailserver.store.models import Account
from tests.conftest import INS

NOTIFIED = date(2025, 1, 31)
DEADLINE = date(2025, 3, 14)  # six weeks later


def paris(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


async def pending(s: Services, ins: str = INS[0]) -> int:
    info, _code = await s.directory.add_patient(ins=ins, name="Marie Dupont", status="pending",
                                                notified_on=NOTIFIED)
    return info.id


async def history_count(s: Services, account_id: int) -> int:
    async with s.db.session() as session:
        return int((await session.execute(select(func.count()).where(
            AccountTransition.account_id == account_id))).scalar_one())


async def test_pending_has_deadline_and_opposition_on_last_day(services: Services) -> None:
    pid = await pending(services)
    life = await services.directory.lifecycle(pid)
    assert life.state is State.PENDING and life.deadline == DEADLINE
    assert life.opens_at == paris(2025, 3, 15) and life.history == ()

    state, code = await services.directory.transition(
        pid, Event.OPPOSE, Actor.agent("A12"), "phone call", now=paris(2025, 3, 14, 23, 59))
    assert state is State.OPPOSED and code is None
    life = await services.directory.lifecycle(pid)
    assert life.state is State.OPPOSED and life.deadline is None
    (row,) = life.history
    assert (row.event, row.from_state, row.to_state, row.actor, row.reason) == (
        "oppose", "pending", "opposed", "agent:A12", "phone call")
    assert row.at == paris(2025, 3, 14, 23, 59)
    assert life.since == row.at
    # The letter's code no longer works: activating takes a new one.
    assert (await services.directory.get(pid)).status == "opposed"
    async with services.db.session() as s:
        assert (await s.get(Account, pid)).provisional_code_hash is None  # type: ignore[union-attr]

    # Opposed accounts are not opened automatically, and opposing twice is refused.
    assert await services.directory.open_due(as_of=paris(2025, 6, 1)) == []
    with pytest.raises(TransitionRefused) as exc:
        await services.directory.transition(pid, Event.OPPOSE, Actor.patient())
    assert exc.value.refusal is Refusal.NOT_FROM_STATE and exc.value.state == "opposed"

    # Activation at any time: a new code, the account open.
    state, code = await services.directory.transition(
        pid, Event.ACTIVATE, Actor.agent("A7"), reissue_code=True)
    assert state is State.OPEN and code
    assert await services.directory.check_provisional_code(pid, code)
    assert [r.to_state for r in (await services.directory.lifecycle(pid)).history] == [
        "opposed", "open"]


async def test_opposition_after_the_deadline_is_refused(services: Services) -> None:
    pid = await pending(services)
    with pytest.raises(TransitionRefused) as exc:
        await services.directory.transition(pid, Event.OPPOSE, Actor.patient(),
                                            now=paris(2025, 3, 15))
    assert exc.value.refusal is Refusal.WINDOW_OVER
    assert (await services.directory.get(pid)).status == "pending"
    assert await history_count(services, pid) == 0


async def test_opening_job_with_a_clock(services: Services) -> None:
    pid = await pending(services)
    other = await pending(services, INS[1])
    await services.directory.transition(other, Event.OPPOSE, Actor.patient(),
                                        now=paris(2025, 2, 2))
    now = [paris(2025, 3, 14, 12)]
    job = OpeningJob(services.directory, clock=lambda: now[0], batch=1)
    assert await job.run_once() == []  # the deadline day itself: not yet
    now[0] = paris(2025, 3, 14, 23, 59)
    assert await job.run_once() == []
    now[0] = paris(2025, 3, 15, 0, 0)  # 00:00 Europe/Paris the day after
    address = (await services.directory.get(pid)).address
    assert await job.run_once() == [address]
    assert await job.run_once() == []  # idempotent
    life = await services.directory.lifecycle(pid)
    assert life.state is State.OPEN
    (row,) = life.history
    assert (row.event, row.actor) == ("auto_open", "system:open-due")
    assert (await services.directory.get(other)).status == "opposed"


async def test_first_connection_activates_in_the_same_transaction(services: Services) -> None:
    pid = await pending(services)
    await services.directory.consume_provisional_code(pid, login_id="marie.d",
                                                      password="Tulipe-Orange-42!")  # noqa: S106
    life = await services.directory.lifecycle(pid)
    assert life.state is State.OPEN
    assert [(r.event, r.actor, r.reason) for r in life.history] == [
        ("activate", "patient", "first connection")]


async def test_refused_transitions_and_codes(services: Services) -> None:
    pid = await pending(services)
    with pytest.raises(TransitionRefused):
        await services.directory.transition(pid, Event.CLOSE, Actor.agent("A1"))
    with pytest.raises(TransitionRefused) as exc:
        await services.directory.transition(pid, Event.AUTO_OPEN, Actor.system("x"),
                                            now=paris(2025, 3, 14, 22))
    assert exc.value.refusal is Refusal.NOT_DUE
    old = await services.directory.new_provisional_code(pid)
    new = await services.directory.new_provisional_code(pid)
    assert not await services.directory.check_provisional_code(pid, old)
    assert await services.directory.check_provisional_code(pid, new)
    assert await history_count(services, pid) == 0


async def test_two_sets_of_services_open_each_account_once(config: Config,
                                                           services: Services) -> None:
    ids = []
    for n in range(12):
        # Test INS-NIR identities: a valid key computed for each.
        nir = f"1850175{n:03d}{123:03d}"
        key = 97 - int(nir) % 97
        info, _ = await services.directory.add_patient(
            ins=f"{nir}{key:02d}", name="X", status="pending", notified_on=NOTIFIED)
        ids.append(info.id)
    other = await open_services(config, fast_passwords=True)
    try:
        clock = lambda: datetime(2025, 3, 20, tzinfo=UTC)  # noqa: E731
        jobs = [OpeningJob(s.directory, clock=clock, batch=3) for s in (services, other)]
        opened: list[str] = []
        for _round in range(6):
            # On SQLite a pass may stop when the other writer holds the lock; the next retries.
            for r in await asyncio.gather(*(j.run_once() for j in jobs)):
                opened += r
        assert len(opened) == len(set(opened)) == 12
        for pid in ids:
            assert (await services.directory.get(pid)).status == "open"
            assert await history_count(services, pid) == 1
    finally:
        await other.close()
