"""Listener hardening (issue 9): STARTTLS inside TLS, connections per client address.

Real server (``runtime`` fixture), real sockets and TLS.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest

from mailserver.runtime import Runtime


class Line:
    """A raw SMTP client over asyncio streams (STARTTLS through ``StreamWriter.start_tls``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, runtime: Runtime, name: str,
                   tls: ssl.SSLContext | None = None) -> Line:
        host, port = runtime.ports[name]
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname="localhost" if tls else None)
        return cls(reader, writer)

    async def reply(self) -> str:
        out = ""
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 10)).decode()
            out += line
            if not line or line[3:4] != "-":
                return out

    async def cmd(self, text: str) -> str:
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def starttls(self, tls: ssl.SSLContext) -> None:
        assert (await self.cmd("STARTTLS")).startswith("220 ")
        await self.writer.start_tls(tls, server_hostname="localhost")

    def close(self) -> None:
        self.writer.close()


@pytest.mark.parametrize("name", ["submission", "submissions", "smtp"])
async def test_second_starttls_inside_tls_is_refused(
        runtime: Runtime, client_tls: ssl.SSLContext, name: str,
        caplog: pytest.LogCaptureFixture) -> None:
    implicit = name == "submissions"
    conn = await Line.open(runtime, name, client_tls if implicit else None)
    assert (await conn.reply()).startswith("220 ")
    assert (await conn.cmd("EHLO client.test")).startswith("250")
    if not implicit:
        await conn.starttls(client_tls)
        ehlo = await conn.cmd("EHLO client.test")
        assert ehlo.startswith("250") and "STARTTLS" not in ehlo
    # RFC 3207 4.2: once TLS is active, STARTTLS is an error; no handshake starts.
    assert await conn.cmd("STARTTLS") == "554 5.5.1 TLS already active\r\n"
    # The session goes on over the same TLS layer.
    assert (await conn.cmd("NOOP")).startswith("250")
    assert (await conn.cmd("QUIT")).startswith("221")
    conn.close()
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
