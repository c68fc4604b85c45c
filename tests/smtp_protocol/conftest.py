"""In-process MailSMTP servers on 127.0.0.1:0 and a raw byte-level SMTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailserver.smtp.protocol import MailSMTP


@dataclass
class Recorded:
    mail_from: str | None
    rcpt_tos: list[str]
    content: bytes
    original_content: bytes


@dataclass
class RecordingHandler:
    """Records every accepted envelope; raises from handle_DATA when told to."""

    envelopes: list[Recorded] = field(default_factory=list)
    fail_with: BaseException | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        assert isinstance(envelope.content, bytes)
        self.envelopes.append(
            Recorded(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content,
                envelope.original_content,
            )
        )
        return "250 2.0.0 OK"


def stuff(content: bytes) -> bytes:
    """Client-side transparency (RFC 5321 4.5.2) plus the end marker; content ends in CRLF."""
    assert content == b"" or content.endswith(b"\r\n")
    return (b"\r\n" + content).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"


class RawClient:
    """Byte-exact SMTP client over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        code, _ = await client.reply()
        assert code == 220
        return client

    async def reply(self, timeout: float = 5.0) -> tuple[int, str]:
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                return 0, "".join(lines)  # connection closed
            text = line.decode()
            lines.append(text)
            if text[3:4] != "-":
                return int(text[:3]), "".join(lines)

    async def cmd(self, line: str) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def envelope(self, rcpt: str = "b@example.org") -> None:
        assert (await self.cmd("MAIL FROM:<a@example.org>"))[0] == 250
        assert (await self.cmd(f"RCPT TO:<{rcpt}>"))[0] == 250
        assert (await self.cmd("DATA"))[0] == 354

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


@dataclass
class Server:
    port: int
    handler: RecordingHandler
    server: asyncio.AbstractServer

    async def client(self, ehlo: bool = True) -> RawClient:
        client = await RawClient.connect(self.port)
        if ehlo:
            assert (await client.cmd("EHLO client.example.org"))[0] == 250
        return client


ServerFactory = Callable[..., Any]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    servers: list[asyncio.AbstractServer] = []

    async def make(**kwargs: Any) -> Server:
        handler = kwargs.pop("handler", None) or RecordingHandler()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: MailSMTP(handler, hostname="mx.test", **kwargs), "127.0.0.1", 0
        )
        servers.append(server)
        return Server(server.sockets[0].getsockname()[1], handler, server)

    yield make
    for server in servers:
        server.close()
        await server.wait_closed()
