"""Mail to patients during each lifecycle state, over real SMTP: pending and opposed accounts
receive nothing (a per-recipient 5xx, the policy's one rule), an open one does; then one
message to a patient in every state, table-style."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import UTC, date, datetime, timedelta

from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from mailserver.lifecycle import PARIS, Actor, Event
from mailserver.runtime import Runtime
from tests.conftest import INS, add_pro
from tests.smtp.conftest import message, submission


async def test_pending_and_opposed_patients_receive_no_mail(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    pro = await add_pro(services, "dr.a")
    d = services.directory
    pending, _ = await d.add_patient(ins=INS[0], name="A", status="pending",
                                     notified_on=date.today())
    opposed, _ = await d.add_patient(ins=INS[1], name="B", status="pending",
                                     notified_on=date.today())
    await d.transition(opposed.id, Event.OPPOSE, Actor.patient())
    nir = "2850175123456"
    opened, _ = await d.add_patient(ins=f"{nir}{97 - int(nir) % 97:02d}", name="C")

    def run() -> dict[str, tuple[int, bytes]]:
        with submission(runtime, client_tls, pro.address) as c:
            return c.sendmail(pro.address, [pending.address, opposed.address, opened.address],
                              message(pro.address, opened.address, body="bonjour"))

    refused = await asyncio.to_thread(run)
    assert sorted(refused) == sorted([pending.address, opposed.address])
    for code, text in refused.values():
        assert code == 550 and text.startswith(b"5.2.1") and b"not open" in text
    for account in (pending, opposed):
        folder = await services.store.get_folder(account.id, "INBOX")
        assert await services.store.list_messages(folder.id) == []
    folder = await services.store.get_folder(opened.id, "INBOX")
    assert len(await services.store.list_messages(folder.id)) == 1


async def test_a_closed_patient_receives_no_mail_and_gets_it_back_on_reactivation(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    pro = await add_pro(services, "dr.a")
    patient, _ = await services.directory.add_patient(ins=INS[0], name="A")

    def send(body: str) -> dict[str, tuple[int, bytes]]:
        with submission(runtime, client_tls, pro.address) as c:
            return c.sendmail(pro.address, [patient.address],
                              message(pro.address, patient.address, body=body))

    assert await asyncio.to_thread(send, "avant") == {}
    await services.closing.close(patient.id, Actor.agent("A1"))
    try:
        await asyncio.to_thread(send, "pendant")
    except smtplib.SMTPRecipientsRefused as exc:
        ((code, text),) = exc.recipients.values()
        assert code == 550 and text.startswith(b"5.2.1") and b"not open" in text
    else:  # pragma: no cover
        raise AssertionError("mail to a closed address was accepted")
    await services.closing.reactivate(patient.id, Actor.agent("A1"))
    folder = await services.store.get_folder(patient.id, "INBOX")
    (only,) = await services.store.list_messages(folder.id)
    assert b"avant" in await services.store.read_raw(only.id)


# (state, how the account gets there from pending, whether it receives mail). The clock: the
# letter on 2014-01-06 (today for the one left pending), the deadline 2014-02-17, the opening
# at 00:00 Paris on the 18th; the purged space closed in 2014.
_T0 = datetime(2014, 1, 10, tzinfo=UTC)
STATES: list[tuple[str, tuple[str, ...], bool]] = [
    ("pending", (), False),
    ("opposed", ("oppose",), False),
    ("open", ("activate",), True),
    ("auto-open", ("auto_open",), True),
    ("closed", ("activate", "close"), False),
    ("reactivated", ("activate", "close", "reactivate"), True),
    ("archive_deleted", ("activate", "close", "delete"), False),
    ("purged", ("activate", "close", "purge"), False),
]


async def _drive(s: Services, pid: int, steps: tuple[str, ...]) -> None:
    agent = Actor.agent("A1")
    # Only the space to purge closes in 2014; the others close now (not ten years ago).
    closing_day = _T0 + timedelta(days=60) if "purge" in steps else None
    for step in steps:
        if step in ("oppose", "activate"):
            await s.directory.transition(pid, Event(step), agent, now=_T0)
        elif step == "auto_open":
            await s.directory.open_due(as_of=datetime(2014, 2, 18, tzinfo=PARIS), limit=50,
                                       actor=Actor.system("test"))
        elif step == "close":
            await s.closing.close(pid, agent, now=closing_day)
        elif step == "reactivate":
            await s.closing.reactivate(pid, agent)
        elif step == "delete":
            await s.closing.request_deletion(pid, agent)
            await s.closing.erase_due(as_of=datetime.now(UTC) + timedelta(days=1))
        else:
            assert await s.closing.purge_due(as_of=datetime.now(UTC))


async def test_mail_in_each_state(runtime: Runtime, services: Services,
                                  client_tls: ssl.SSLContext) -> None:
    """One message to a patient in every state: a per-recipient 5xx for each account that is
    not open, delivered to the open ones only."""
    pro = await add_pro(services, "dr.a")
    accounts: dict[str, AccountInfo] = {}
    for n, (name, steps, _receives) in enumerate(STATES):
        nir = f"2850175{n:03d}789"
        info, _ = await services.directory.add_patient(
            ins=f"{nir}{97 - int(nir) % 97:02d}", name=name, status="pending",
            notified_on=date.today() if name == "pending" else date(2014, 1, 6))
        await _drive(services, info.id, steps)
        accounts[name] = info
    expected_state = {name: (await services.directory.get(a.id)).status
                      for name, a in accounts.items()}
    assert expected_state == {"pending": "pending", "opposed": "opposed", "open": "open",
                              "auto-open": "open", "closed": "closed", "reactivated": "open",
                              "archive_deleted": "archive_deleted", "purged": "purged"}
    to = [a.address for a in accounts.values()]

    def run() -> dict[str, tuple[int, bytes]]:
        with submission(runtime, client_tls, pro.address) as c:
            return c.sendmail(pro.address, to, message(pro.address, to[0], body="bonjour"))

    refused = await asyncio.to_thread(run)
    for name, _steps, receives in STATES:
        address = accounts[name].address
        assert (address not in refused) is receives, name
        if not receives:
            code, text = refused[address]
            assert code == 550 and text.startswith(b"5.2.1"), (name, code, text)
            continue
        folder = await services.store.get_folder(accounts[name].id, "INBOX")
        assert len(await services.store.list_messages(folder.id)) == 1, name
