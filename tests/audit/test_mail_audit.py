"""The audit trail of SMTP and IMAP actions, driven by real clients over TLS."""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
import smtplib
import ssl

import pytest

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.audit.helpers import assert_no_content, rows
from tests.conftest import DOMAIN, PASSWORD, RPPS, add_patient, add_pro
from tests.imap.conftest import Imap, imap  # noqa: F401 - the fixture
from tests.smtp.conftest import submission

SUBJECT = "Sujet-secret-7731"
BODY = "Corps-confidentiel-9152"
WRONG = "mauvais-mot-de-passe-4410"


def _message(sender: str, to: str, msgid: str) -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {SUBJECT}\r\nMessage-ID: {msgid}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{BODY}\r\n"
            ).encode()


async def test_submission_logins_sent_received_refused(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    sender = await add_pro(services, "dr.martin", RPPS[0])
    colleague = await add_pro(services, "dr.durand", RPPS[1])
    msgid = f"<audit-1@{DOMAIN}>"

    def go() -> tuple[int, bytes]:
        with submission(runtime, client_tls) as c:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login(sender.address, WRONG)
        with submission(runtime, client_tls, sender.address) as c:
            refused = c.docmd("MAIL FROM:<dr.martin@hopital.mssante.test>")
            assert refused[0] == 250
            bad = c.docmd("RCPT TO:<nobody@hopital.mssante.test>")
            c.rset()
            c.sendmail(sender.address, [colleague.address],
                       _message(sender.address, colleague.address, msgid))
            return bad

    bad = await asyncio.to_thread(go)
    assert bad[0] == 550
    found = await rows(services, sender.address)
    # smtplib tries each mechanism the server offers: one failed row per attempt.
    failed = next(r for r in found if r.action == "login-failed")
    ok = next(r for r in found if r.action == "login")
    assert found[0] is failed
    assert failed.protocol == ok.protocol == "submission"
    assert failed.client == "127.0.0.1" and failed.outcome == "invalid"
    assert ok.details["mechanism"] in ("PLAIN", "LOGIN") and ok.account_id == sender.id
    refusal = next(r for r in found if r.action == "message-refused")
    assert refusal.details["to"] == ["nobody@hopital.mssante.test"]
    assert refusal.details["reason"] == "UNKNOWN_RECIPIENT" and refusal.outcome == "refused"
    sent = next(r for r in found if r.action == "message-sent")
    digest = hashlib.sha256(msgid.encode()).hexdigest()
    assert sent.details["to"] == [colleague.address]
    assert sent.details["message_id_sha256"] == digest and sent.details["size"] > 0
    received = await rows(services, colleague.address, "message-received")
    assert len(received) == 1 and received[0].account_id == colleague.id
    assert received[0].details["from"] == sender.address
    assert received[0].details["message_id_sha256"] == digest
    await assert_no_content(services, SUBJECT, BODY, WRONG, PASSWORD)


async def test_patient_refused_at_data_and_unknown_name(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    pro = await add_pro(services, "dr.martin", RPPS[0])
    patient = await add_patient(services)

    def go() -> None:
        with submission(runtime, client_tls) as c:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.login("not-an-address", WRONG)
        with submission(runtime, client_tls, pro.address) as c:
            c.sendmail(pro.address, [patient.address],
                       _message(pro.address, patient.address, f"<audit-2@{DOMAIN}>"))

    await asyncio.to_thread(go)
    unknown = await rows(services, action="login-failed")
    assert unknown and all(r.address is None and r.account_id is None for r in unknown)
    assert all(r.details["kind"].startswith("unknown-name:") for r in unknown)
    got = await rows(services, patient.address, "message-received")
    assert len(got) == 1 and got[0].protocol == "submission"
    await assert_no_content(services, SUBJECT, BODY, WRONG, "not-an-address")


def _imap_session(box: Imap) -> None:
    m = imaplib.IMAP4(box.host, box.port)
    m.starttls(box.tls)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(box.user, WRONG)
    m.login(box.user, box.password)
    m.select("INBOX")
    m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])")  # no row: no body
    m.uid("FETCH", "1:2", "(BODY[])")
    m.uid("STORE", "1", "+FLAGS", "(\\Flagged $Patient-Dupont-5501)")
    m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.create("Dossier-personnel-3321")
    m.uid("COPY", "2", "Dossier-personnel-3321")
    m.uid("MOVE", "2:3", "Trash")
    m.logout()


async def test_imap_reads_deletions_moves(imap: Imap, services: Services) -> None:  # noqa: F811
    sender = await add_pro(services, "dr.durand", RPPS[1])
    account = await services.directory.get(imap.account_id)
    party = await services.delivery.party_of(sender)
    for n in range(3):
        await services.delivery.deliver(
            party, sender.address, [imap.user],
            _message(sender.address, imap.user, f"<imap-{n}@{DOMAIN}>"), authenticated=sender)
    await asyncio.to_thread(_imap_session, imap)
    found = [r for r in await rows(services, account.address) if r.protocol == "imap"]
    assert [r.action for r in found] == [
        "login-failed", "login", "mailbox-selected", "message-read", "flags-changed",
        "message-deleted", "message-expunged", "message-copied", "message-moved"]
    selected, read, flagged, deleted, expunged, copied, moved = found[2:]
    assert selected.details == {"folder": "INBOX", "folder_id": read.details["folder_id"],
                                "count": 3}
    assert read.details == {"folder": "INBOX", "folder_id": read.details["folder_id"],
                            "count": 2, "first_uid": 1, "last_uid": 2}
    assert flagged.details["flags"] == ["\\Flagged", "keyword"]
    assert flagged.details["mode"] == "add" and flagged.details["count"] == 1
    assert deleted.details["count"] == 1 and deleted.details["first_uid"] == 1
    assert expunged.details["count"] == 1
    assert copied.details["to_folder"] == "other"
    assert moved.details["to_folder"] == "Trash" and moved.details["count"] == 2
    assert all(r.client == "127.0.0.1" and r.account_id == imap.account_id for r in found)
    await assert_no_content(services, SUBJECT, BODY, WRONG, "Dossier-personnel-3321",
                            "Patient-Dupont")
