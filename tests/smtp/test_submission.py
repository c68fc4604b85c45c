"""SMTP submission over real TLS: authentication, lockout, spoofing, recipients, SIZE, policy."""

from __future__ import annotations

import asyncio
import smtplib
import ssl

import aiosmtplib
import pytest

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, INS, PASSWORD, PATIENT_DOMAIN, RPPS, add_patient, add_pro
from tests.smtp.conftest import message, submission


async def _inbox(services: Services, account_id: int) -> list[bytes]:
    folder = await services.store.get_folder(account_id, "INBOX")
    return [await services.store.read_raw(m.id)
            for m in await services.store.list_messages(folder.id)]


async def test_auth_not_offered_before_starttls(runtime: Runtime) -> None:
    host, port = runtime.ports["submission"]

    def run() -> tuple[bytes, tuple[int, bytes], tuple[int, bytes]]:
        with smtplib.SMTP(host, port, timeout=10) as c:
            code, ehlo = c.ehlo()
            mail = c.docmd("MAIL FROM:<a@b.fr>")
            auth = c.docmd("AUTH PLAIN AGRuYQBwdw==")
            return ehlo, mail, auth

    ehlo, mail, auth = await asyncio.to_thread(run)
    assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo
    assert mail[0] == 530  # RFC 3207: STARTTLS first
    assert auth[0] == 530


async def test_tls_1_1_refused(runtime: Runtime, client_tls: ssl.SSLContext) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        old.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    host, port = runtime.ports["submission"]

    def run() -> None:
        with smtplib.SMTP(host, port, timeout=10) as c:
            c.starttls(context=old)

    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
        await asyncio.to_thread(run)


async def test_submit_to_professional_and_patient(runtime: Runtime, services: Services,
                                                  client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services, "dr.martin")
    b = await add_pro(services, "ide.petit", RPPS[3], "60")
    patient = await add_patient(services)

    def run() -> None:
        with submission(runtime, client_tls, a.address) as c:
            c.sendmail(a.address, [b.address, patient.address],
                       message(a.address, f"{b.address}, {patient.address}", body="CR OK"))

    await asyncio.to_thread(run)
    got_b = await _inbox(services, b.id)
    got_p = await _inbox(services, patient.id)
    assert len(got_b) == 1 and len(got_p) == 1
    assert b"CR OK" in got_b[0] and got_b[0].startswith(b"Received: from client.test")
    sent = await services.store.get_folder(a.id, "Sent")
    assert sent.message_count == 1
    # A conversation was started for the patient, with the professional as party.
    convs = await services.conversations.list_for_patient(patient.id)
    assert len(convs) == 1 and convs[0].parties == frozenset({a.address})


async def test_missing_message_id_and_date_are_added(runtime: Runtime, services: Services,
                                                     client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    raw = f"From: {a.address}\r\nTo: {a.address}\r\nSubject: x\r\n\r\nhi\r\n".encode()

    def run() -> None:
        with submission(runtime, client_tls, a.address) as c:
            c.sendmail(a.address, [a.address], raw)

    await asyncio.to_thread(run)
    got = (await _inbox(services, a.id))[0]
    assert b"\r\nMessage-ID: <" in got and b"\r\nDate: " in got


async def test_aiosmtplib_client(runtime: Runtime, services: Services,
                                 client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    host, port = runtime.ports["submission"]
    await aiosmtplib.send(message(a.address, a.address, body="via aiosmtplib"), sender=a.address,
                          recipients=[a.address], hostname=host, port=port, start_tls=True,
                          tls_context=client_tls, username=a.address, password=PASSWORD)
    assert b"via aiosmtplib" in (await _inbox(services, a.id))[0]


async def test_bad_password_then_lockout(runtime: Runtime, services: Services,
                                         client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)

    def attempt(password: str) -> int:
        # One mechanism per attempt: smtplib.login() would try PLAIN then LOGIN.
        with submission(runtime, client_tls) as c:
            c.ehlo()
            c.user, c.password = a.address, password
            try:
                c.auth("PLAIN", c.auth_plain)
                return 235
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code

    codes = [await asyncio.to_thread(attempt, "wrong-password") for _ in range(5)]
    assert codes == [535] * 5
    # Locked now: even the right password is refused for a while (temporary, 454).
    assert await asyncio.to_thread(attempt, PASSWORD) == 454


async def test_unknown_user_and_patient_login_refused(runtime: Runtime, services: Services,
                                                      client_tls: ssl.SSLContext) -> None:
    patient = await add_patient(services)
    await services.directory.set_password(patient.id, PASSWORD)

    def attempt(user: str) -> tuple[int, bytes]:
        with submission(runtime, client_tls) as c:
            try:
                c.login(user, PASSWORD)
                return 235, b""
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code, exc.smtp_error

    assert (await asyncio.to_thread(attempt, f"ghost@{DOMAIN}"))[0] == 535
    code, text = await asyncio.to_thread(attempt, patient.address)
    assert code == 535 and b"webmail" in text


async def test_spoofed_envelope_sender_refused(runtime: Runtime, services: Services,
                                               client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    b = await add_pro(services, "other", RPPS[1])

    def run() -> tuple[int, bytes]:
        with submission(runtime, client_tls, a.address) as c:
            return c.docmd(f"MAIL FROM:<{b.address}>")

    code, _ = await asyncio.to_thread(run)
    assert code == 553


async def test_spoofed_from_header_refused(runtime: Runtime, services: Services,
                                           client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    b = await add_pro(services, "other", RPPS[1])

    def run() -> None:
        with submission(runtime, client_tls, a.address) as c:
            c.sendmail(a.address, [b.address], message(b.address, b.address))

    with pytest.raises(smtplib.SMTPDataError) as err:
        await asyncio.to_thread(run)
    assert err.value.smtp_code == 550 and b"From" in err.value.smtp_error
    assert await _inbox(services, b.id) == []


@pytest.mark.parametrize("rcpt,code,text", [
    (f"nobody@{DOMAIN}", 550, b"Unknown recipient"),
    (f"{INS[1]}@{PATIENT_DOMAIN}", 550, b"Unknown recipient"),
    ("someone@gmail.com", 550, b"outside the MSSante trust space"),
    ("not-an-address", 501, b""),  # aiosmtpd's syntax check answers first (RFC 5321 4.2.3)
], ids=["unknown-pro", "unknown-patient", "outside-trust-space", "invalid"])
async def test_refused_recipients(runtime: Runtime, services: Services,
                                  client_tls: ssl.SSLContext, rcpt: str, code: int,
                                  text: bytes) -> None:
    a = await add_pro(services)

    def run() -> tuple[int, bytes]:
        with submission(runtime, client_tls, a.address) as c:
            c.docmd(f"MAIL FROM:<{a.address}>")
            return c.docmd(f"RCPT TO:<{rcpt}>")

    got_code, got_text = await asyncio.to_thread(run)
    assert got_code == code
    assert text in got_text


@pytest.mark.parametrize("status", ["pending", "opposed", "closed"])
async def test_patient_account_not_open(runtime: Runtime, services: Services,
                                        client_tls: ssl.SSLContext, status: str) -> None:
    a = await add_pro(services)
    patient = await add_patient(services, status=status)

    def run() -> tuple[int, bytes]:
        with submission(runtime, client_tls, a.address) as c:
            c.docmd(f"MAIL FROM:<{a.address}>")
            return c.docmd(f"RCPT TO:<{patient.address}>")

    code, text = await asyncio.to_thread(run)
    assert code == 550 and b"closed" in text


async def test_per_recipient_answers(runtime: Runtime, services: Services,
                                     client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    patient = await add_patient(services)

    def run() -> dict[str, tuple[int, bytes]]:
        with submission(runtime, client_tls, a.address) as c:
            return c.sendmail(a.address, [patient.address, f"ghost@{DOMAIN}"],
                              message(a.address, patient.address))

    refused = await asyncio.to_thread(run)
    assert list(refused) == [f"ghost@{DOMAIN}"]
    assert len(await _inbox(services, patient.id)) == 1


async def test_size_advertised_and_enforced(runtime: Runtime, services: Services,
                                            client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    limit = services.config.smtp.max_message_size

    def run() -> tuple[bytes, tuple[int, bytes], tuple[int, bytes]]:
        with submission(runtime, client_tls, a.address) as c:
            ehlo = c.ehlo()[1]
            declared = c.docmd(f"MAIL FROM:<{a.address}> SIZE={limit + 1}")
            c.rset()
            c.docmd(f"MAIL FROM:<{a.address}>")
            c.docmd(f"RCPT TO:<{a.address}>")
            c.docmd("DATA")
            head = f"From: {a.address}\r\nSubject: big\r\n\r\n".encode()
            line = b"A" * 998 + b"\r\n"
            c.send(head + line * (limit // len(line) + 2) + b".\r\n")
            after = c.getreply()
            return ehlo, declared, after

    ehlo, declared, after = await asyncio.to_thread(run)
    assert f"SIZE {limit}".encode() in ehlo
    assert declared[0] == 552
    assert after[0] == 552
    assert await _inbox(services, a.id) == []


async def test_exception_text_never_reaches_client(runtime: Runtime, services: Services,
                                                   client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)

    async def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("SECRET internal detail")

    services.delivery.deliver = broken  # type: ignore[method-assign]

    def run() -> tuple[int, bytes]:
        with submission(runtime, client_tls, a.address) as c:
            try:
                c.sendmail(a.address, [a.address], message(a.address, a.address))
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error
            return 250, b""

    code, text = await asyncio.to_thread(run)
    assert code == 451 and b"SECRET" not in text and b"ref" in text


async def test_implicit_tls_submission(runtime: Runtime, services: Services,
                                       client_tls: ssl.SSLContext) -> None:
    """RFC 8314: submission with TLS from the first byte (the port-465 role)."""
    a = await add_pro(services)
    host, port = runtime.ports["submissions"]

    def run() -> bytes:
        with smtplib.SMTP_SSL(host, port, context=client_tls, timeout=10) as c:
            ehlo = c.ehlo()[1]
            c.login(a.address, PASSWORD)
            c.sendmail(a.address, [a.address], message(a.address, a.address, body="over 465"))
            return ehlo

    ehlo = await asyncio.to_thread(run)
    assert b"AUTH" in ehlo and b"STARTTLS" not in ehlo
    assert b"over 465" in (await _inbox(services, a.id))[0]
    assert b"with ESMTPSA" in (await _inbox(services, a.id))[0]


async def test_implicit_tls_port_refuses_plaintext(runtime: Runtime) -> None:
    host, port = runtime.ports["submissions"]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"EHLO plain\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(100), 5)
    assert not data.startswith(b"220") and not data.startswith(b"250")
    writer.close()


async def test_bare_lf_lines_are_repaired_at_submission(runtime: Runtime, services: Services,
                                                         client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    raw = (f"From: {a.address}\nTo: {a.address}\nSubject: Rendez-vous de contrôle\n"
           "Message-ID: <lf@test>\n\nligne 1\nligne 2\n").encode()

    def run() -> None:
        with submission(runtime, client_tls, a.address) as c:
            c.sendmail(a.address, [a.address], raw)

    await asyncio.to_thread(run)
    got = (await _inbox(services, a.id))[0]
    assert b"\r\nSubject: Rendez-vous de contr\xc3\xb4le\r\n" in got
    assert b"ligne 1\r\nligne 2\r\n" in got and b"\n" not in got.replace(b"\r\n", b"")
    folder = await services.store.get_folder(a.id, "INBOX")
    (info,) = await services.store.list_messages(folder.id)
    assert (await services.store.read_header_fields(info.id))[0] == "Rendez-vous de contrôle"
