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
    plain = await start_imap(services.imap_backend(), "127.0.0.1", 0, ctx, implicit_tls=False)
    implicit = await start_imap(services.imap_backend(), "127.0.0.1", 0, ctx, implicit_tls=True)
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


class Raw:
    """A minimal asyncio IMAP client speaking raw lines (for protocol-level tests)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.n = 0

    async def line(self, timeout: float = 5.0) -> bytes:
        """One response line; a literal ``{n}`` is read and joined to it."""
        data = await asyncio.wait_for(self.reader.readline(), timeout)
        while data.endswith(b"}\r\n") and b"{" in data:
            size = int(data[data.rindex(b"{") + 1:-3])
            data += await asyncio.wait_for(self.reader.readexactly(size), timeout)
            data += await asyncio.wait_for(self.reader.readline(), timeout)
        return data

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def cmd(self, text: bytes | str, tag: str | None = None) -> list[bytes]:
        """Send ``tag text`` and return every line up to and including the tagged one."""
        if tag is None:
            self.n += 1
            tag = f"t{self.n}"
        raw = text.encode() if isinstance(text, str) else text
        await self.write(tag.encode() + b" " + raw + b"\r\n")
        return await self.until(tag)

    async def until(self, tag: str) -> list[bytes]:
        out = []
        while True:
            line = await self.line()
            if not line:
                raise ConnectionError("server closed the connection")
            out.append(line)
            if line.startswith(tag.encode() + b" "):
                return out

    async def close(self) -> None:
        self.writer.close()


async def open_raw(imap: Imap, *, login: bool = True, implicit: bool = True) -> Raw:
    """Connect (implicit TLS by default), read the greeting, optionally log in."""
    if implicit:
        reader, writer = await asyncio.open_connection(imap.host, imap.tls_port, ssl=imap.tls,
                                                       server_hostname="localhost")
    else:
        reader, writer = await asyncio.open_connection(imap.host, imap.port)
    raw = Raw(reader, writer)
    greeting = await raw.line()
    assert greeting.startswith(b"* OK")
    if login:
        res = await raw.cmd(f'LOGIN "{imap.user}" "{imap.password}"')
        assert res[-1].split()[1] == b"OK", res
    return raw
