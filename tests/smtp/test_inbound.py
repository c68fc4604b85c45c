"""The inbound (port-25 role) listener: never an open relay, trust space enforced, and a bad
client does not disturb the others."""

from __future__ import annotations

import asyncio
import smtplib
import ssl

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, add_patient, add_pro
from tests.smtp.conftest import message, submission


def _inbound(runtime: Runtime, tls: ssl.SSLContext) -> smtplib.SMTP:
    host, port = runtime.ports["smtp"]
    c = smtplib.SMTP(host, port, local_hostname="mx.other.test", timeout=10)
    c.starttls(context=tls)
    c.ehlo()
    return c


async def test_starttls_offered_and_no_auth(runtime: Runtime) -> None:
    host, port = runtime.ports["smtp"]

    def run() -> bytes:
        with smtplib.SMTP(host, port, timeout=10) as c:
            return c.ehlo()[1]

    ehlo = await asyncio.to_thread(run)
    assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo


async def test_no_open_relay(runtime: Runtime, services: Services,
                             client_tls: ssl.SSLContext) -> None:
    def run() -> list[tuple[int, bytes]]:
        with _inbound(runtime, client_tls) as c:
            out = [c.docmd("MAIL FROM:<x@other.test>")]
            out.append(c.docmd("RCPT TO:<victim@gmail.com>"))
            out.append(c.docmd("RCPT TO:<someone@other.test>"))
            return out

    answers = await asyncio.to_thread(run)
    assert all(code >= 500 for code, _ in answers)


async def test_sender_outside_trust_space_refused(runtime: Runtime, services: Services,
                                                  client_tls: ssl.SSLContext) -> None:
    patient = await add_patient(services)

    def run() -> tuple[int, bytes]:
        with _inbound(runtime, client_tls) as c:
            mail = c.docmd("MAIL FROM:<spam@gmail.com>")
            return mail

    code, text = await asyncio.to_thread(run)
    assert code == 550 and (b"trust space" in text or b"certificate" in text)
    assert (await services.store.get_folder(patient.id, "INBOX")).message_count == 0


async def test_own_domain_sender_must_use_submission(runtime: Runtime, services: Services,
                                                     client_tls: ssl.SSLContext) -> None:
    def run() -> tuple[int, bytes]:
        with _inbound(runtime, client_tls) as c:
            return c.docmd(f"MAIL FROM:<dr.martin@{DOMAIN}>")

    code, _ = await asyncio.to_thread(run)
    assert code == 550


async def test_bad_command_flood_is_cut_and_others_continue(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    doctor = await add_pro(services)
    host, port = runtime.ports["smtp"]
    reader, writer = await asyncio.open_connection(host, port)
    await reader.readline()
    replies = []
    for _ in range(40):
        writer.write(b"BOGUS command\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
        replies.append(line)
        if not line:
            break
    # Cut with 421 (our error limit) or aiosmtpd's 502 "too many unrecognized commands".
    assert replies[-1] == b"" and replies[-2][:3] in (b"421", b"502"), replies[-3:]
    assert len(replies) <= 25
    writer.close()

    # A slow client that sends half a command and stalls does not block another session.
    slow_r, slow_w = await asyncio.open_connection(host, port)
    await slow_r.readline()
    slow_w.write(b"EHLO slow")

    def send() -> None:
        with submission(runtime, client_tls, doctor.address) as c:
            c.sendmail(doctor.address, [doctor.address],
                       message(doctor.address, doctor.address))

    await asyncio.wait_for(asyncio.to_thread(send), 15)
    slow_w.close()
    assert (await services.store.get_folder(doctor.id, "INBOX")).message_count == 1


async def test_non_smtp_first_line(runtime: Runtime) -> None:
    host, port = runtime.ports["smtp"]
    reader, writer = await asyncio.open_connection(host, port)
    await reader.readline()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    assert line[:1] == b"5"
    writer.close()
