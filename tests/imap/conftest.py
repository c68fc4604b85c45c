"""Fixtures: the real IMAP server (STARTTLS and implicit TLS) on ephemeral loopback ports."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mailserver.app import Services
from mailserver.config import Config
from mailserver.imap.server import start_imap
from mailserver.tls import server_context
from tests.conftest import DOMAIN, PASSWORD, RPPS, add_pro

USER = f"dr.martin@{DOMAIN}"


@dataclass
class Imap:
    """Where the servers listen, and the test account."""

    host: str
    port: int
    tls_port: int
    user: str
    password: str
    account_id: int
    tls: ssl.SSLContext
    services: Services


@pytest.fixture
async def imap(config: Config, services: Services, client_tls: ssl.SSLContext
               ) -> AsyncIterator[Imap]:
    ctx = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    plain = await start_imap(services, "127.0.0.1", 0, ctx, implicit_tls=False)
    implicit = await start_imap(services, "127.0.0.1", 0, ctx, implicit_tls=True)
    acct = await add_pro(services, "dr.martin", RPPS[0])
    try:
        yield Imap("127.0.0.1", plain.sockets[0].getsockname()[1],
                   implicit.sockets[0].getsockname()[1], USER, PASSWORD, acct.id, client_tls,
                   services)
    finally:
        for srv in (plain, implicit):
            srv.close()
        await asyncio.sleep(0)


def message(n: int = 1, subject: str = "Compte rendu", body: str = "Bonjour.\r\n",
            msgid: str | None = None) -> bytes:
    """A small RFC 5322 message."""
    mid = msgid or f"<m{n}@{DOMAIN}>"
    return (f"From: Dr Durand <dr.durand@{DOMAIN}>\r\nTo: {USER}\r\n"
            f"Subject: {subject} {n}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
            f"Message-ID: {mid}\r\n\r\n{body}").encode()
