"""Mail to patients during each lifecycle state, over real SMTP: pending and opposed accounts
receive nothing (a per-recipient 5xx, the policy's one rule), an open one does."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import date

from mailserver.app import Services
from mailserver.lifecycle import Actor, Event
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
