"""The inactive professional mailboxes: the rule as a table, the job on a real store, the
preview command."""

from __future__ import annotations

import asyncio
import io
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailserver.app import Services, inactivity_sweep, open_services
from mailserver.cli import main
from mailserver.config import InactivityConfig, from_dict, load
from mailserver.directory.inactivity import Step, step
from mailserver.errors import ConfigError
from mailserver.store.inactivity import InactiveAccount
from mailserver.store.models import Account
from tests.conftest import INS, PASSWORD, RPPS, add_patient, add_pro

NOW = datetime(2027, 6, 1, tzinfo=UTC)
CFG = InactivityConfig()


def _acct(idle_days: int, notice_days_ago: int | None = None,
          marked: bool = False) -> InactiveAccount:
    return InactiveAccount(
        1, "a@x.test", NOW - timedelta(days=idle_days), True,
        NOW - timedelta(days=notice_days_ago) if notice_days_ago is not None else None,
        NOW if marked else None)


@pytest.mark.parametrize(("account", "expected"), [
    (_acct(300), Step.NONE),
    (_acct(335), Step.NOTICE),                        # 11 months: the notice
    (_acct(500), Step.NOTICE),                        # very old, never warned: warn first
    (_acct(364, notice_days_ago=29), Step.NONE),
    (_acct(365, notice_days_ago=29), Step.NONE),      # 12 months but warned 29 days ago
    (_acct(365, notice_days_ago=30), Step.MARK),      # 12 months and warned a month ago
    (_acct(400, notice_days_ago=60, marked=True), Step.NONE),  # already marked
], ids=["10-months", "11-months", "old-unwarned", "warned-early", "warned-recently",
        "12-months", "marked"])
def test_the_rule(account: InactiveAccount, expected: Step) -> None:
    assert step(account, NOW, CFG) is expected


async def _age(s: Services, account_id: int, days: int) -> None:
    when = datetime.now(UTC) - timedelta(days=days)
    async with s.db.session() as session:
        await session.execute(update(Account).where(Account.id == account_id)
                              .values(created_at=when, last_login_at=None))
        await session.commit()


async def _row(s: Services, account_id: int) -> Account:
    async with s.db.session() as session:
        return (await session.execute(select(Account).where(Account.id == account_id))
                ).scalar_one()


async def test_notice_then_mark_then_a_login_clears_them(services: Services) -> None:
    old = await add_pro(services, "dr.old", RPPS[0])
    active = await add_pro(services, "dr.active", RPPS[1])
    patient = await add_patient(services, INS[0])
    for account in (old, active, patient):
        await _age(services, account.id, 400)
    await services.directory.authenticate(active.address, PASSWORD)
    assert (await _row(services, active.id)).last_login_at is not None

    sweep = inactivity_sweep(services)
    now = datetime.now(UTC)
    assert await sweep.run_once(now) == (1, 0)  # only the unused professional: a notice
    inbox = await services.store.get_folder(old.id, "INBOX")
    notices = await services.store.list_messages(inbox.id)
    assert len(notices) == 1
    raw = await services.store.read_raw(notices[0].id)
    assert b"marqu" in raw and old.address.encode() in raw
    assert await sweep.run_once(now + timedelta(days=1)) == (0, 0)  # once
    assert await sweep.run_once(now + timedelta(days=31)) == (0, 1)  # a month later: marked
    row = await _row(services, old.id)
    assert row.inactive_notice_at is not None and row.inactive_marked_at is not None
    assert (await _row(services, patient.id)).inactive_notice_at is None  # patients excluded

    await services.directory.authenticate(old.address, PASSWORD)  # the owner comes back
    row = await _row(services, old.id)
    assert row.last_login_at is not None
    assert row.inactive_notice_at is None and row.inactive_marked_at is None
    assert await sweep.preview(now + timedelta(days=31)) == []


def test_preview_command(data_dir: Path) -> None:
    async def seed() -> None:  # the command reads the data dir's own (SQLite) database
        s = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
        try:
            old = await add_pro(s, "dr.old", RPPS[0])
            await add_patient(s, INS[0])
            await _age(s, old.id, 340)
        finally:
            await s.close()

    asyncio.run(seed())
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["accounts", "inactive", "--data-dir", str(data_dir)]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("dr.old@") and "never logged in" in lines[0]
    assert "notice due now" in lines[0]
    assert lines[-1].startswith("1 professional mailboxes unused for 335 days")
    out = io.StringIO()
    earlier = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    with redirect_stdout(out):
        assert main(["accounts", "inactive", "--data-dir", str(data_dir), "--as-of",
                     earlier]) == 0
    assert out.getvalue().startswith("0 professional mailboxes")


def test_config_keys(data_dir: Path) -> None:
    config = from_dict(data_dir, {"domain": "h.test", "inactivity": {"notice_days": 300,
                                                                     "grace_days": 60}})
    assert (config.inactivity.notice_days, config.inactivity.grace_days) == (300, 60)
    with pytest.raises(ConfigError, match="mark_days must exceed notice_days"):
        from_dict(data_dir, {"domain": "h.test", "inactivity": {"notice_days": 400}})
