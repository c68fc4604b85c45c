"""Submission: the author fields (From:, Sender:) are the authenticated mailbox's, as every
reader reads them (issue 9, items 3 and 22). Real TLS, real smtplib, real IMAP-side parsing."""

from __future__ import annotations

import asyncio
import smtplib
import ssl

import pytest

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, RPPS, add_pro
from tests.smtp.conftest import submission

A = f"dr.a@{DOMAIN}"
B = f"dr.b@{DOMAIN}"


def _msg(headers: str, body: str = "Bonjour") -> bytes:
    return (f"{headers}To: {B}\r\nSubject: Avis\r\nMessage-ID: <x{abs(hash(headers))}@t>\r\n"
            f"\r\n{body}\r\n").encode()


async def _send(runtime: Runtime, tls: ssl.SSLContext, raw: bytes) -> tuple[int, bytes]:
    def run() -> tuple[int, bytes]:
        with submission(runtime, tls, A) as c:
            try:
                c.sendmail(A, [B], raw)
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error
            return 250, b""

    return await asyncio.to_thread(run)


async def _inbox_count(services: Services, account_id: int) -> int:
    folder = await services.store.get_folder(account_id, "INBOX")
    return len(await services.store.list_messages(folder.id))


@pytest.mark.parametrize("headers,status", [
    (f"From: {A}\r\nFrom: {B}\r\n", b"5.6.0"),
    (f"From: {A}\r\nfrom : {B}\r\n", b"5.6.0"),  # RFC 5322 4.5 obsolete WSP before colon
    (f"From: {A}\r\nX-Note: x\rFrom: {B}\r\n", b"5.6.0"),  # bare CR starts a line for some
    (f"From: {A}, {B}\r\n", b"5.7.1"),
    (f"From: Dr A <{A}>,\r\n Dr B <{B}>\r\n", b"5.7.1"),
    (f"From: {A}\r\nSender: {B}\r\n", b"5.7.1"),
    (f"From: {A}\r\nSender: {A}\r\nSender: {B}\r\n", b"5.6.0"),
    (f"From: {A}\r\n\tfoo\r\n", b"5.6.0"),  # unfolds to "dr.a@...\tfoo" (item 22)
    (f"From: {A} <{B}>\r\n", b"5.6.0"),
    ("From: undisclosed:;\r\n", b"5.6.0"),
    ("", b"5.6.0"),
], ids=["two-from", "two-from-obs-colon", "bare-cr", "second-address", "folded-second-address",
        "sender-other", "two-senders", "folded-junk", "addr-then-angle", "empty-group",
        "no-from"])
async def test_foreign_or_ambiguous_author_refused(runtime: Runtime, services: Services,
                                                   client_tls: ssl.SSLContext, headers: str,
                                                   status: bytes) -> None:
    await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    code, text = await _send(runtime, client_tls, _msg(headers))
    assert code == 550 and text.startswith(status), text
    assert await _inbox_count(services, b.id) == 0


@pytest.mark.parametrize("headers", [
    f"From: {A}\r\n",
    f"From: Dr. A <{A}>\r\n",  # obsolete but common unquoted dot in the phrase
    f'From: "Dr A, cardiologue" <{A.upper()}>\r\nSender: {A}\r\n',
    f"From: =?utf-8?q?Dr_=C3=89lise_A?=\r\n <{A}> (cabinet)\r\n",
    f"From: Dr A <{A}>, {A}\r\n",
], ids=["plain", "obsolete-phrase", "quoted-comma-and-sender", "folded-encoded", "self-twice"])
async def test_own_author_accepted(runtime: Runtime, services: Services,
                                   client_tls: ssl.SSLContext, headers: str) -> None:
    await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    assert (await _send(runtime, client_tls, _msg(headers)))[0] == 250
    assert await _inbox_count(services, b.id) == 1
