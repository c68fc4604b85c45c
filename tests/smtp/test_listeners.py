"""Listener hardening (issue 9): STARTTLS inside TLS, connections per client address.

Real server (``runtime`` fixture), real sockets and TLS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import ssl
from collections.abc import AsyncIterator

import pytest

from mailserver.app import Services
from mailserver.config import Config, ListenConfig
from mailserver.runtime import Runtime, start_runtime
from tests.conftest import add_pro
from tests.smtp.conftest import message, submission


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


LIMIT = 3


@pytest.fixture
async def limited(config: Config, services: Services) -> AsyncIterator[Runtime]:
    """The three SMTP listeners with ``[smtp] max_connections_per_address = 3``."""
    config = dataclasses.replace(
        config, smtp=dataclasses.replace(config.smtp, max_connections_per_address=LIMIT))
    rt = await start_runtime(config, ListenConfig(submission="127.0.0.1:0",
                                                  submissions="127.0.0.1:0",
                                                  smtp="127.0.0.1:0"), services=services)
    try:
        yield rt
    finally:
        await rt.close()


async def _connect(rt: Runtime, name: str, tls: ssl.SSLContext,
                   source: str = "127.0.0.1") -> tuple[Line, str]:
    host, port = rt.ports[name]
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(source, 0), ssl=tls if name == "submissions" else None,
        server_hostname="localhost" if name == "submissions" else None)
    conn = Line(reader, writer)
    return conn, await conn.reply()


def test_connection_limit_defaults_to_50(config: Config) -> None:
    assert config.smtp.max_connections_per_address == 50
    assert config.imap.max_connections_per_address == 50
    assert config.smtp.max_header_size == 100 * 1024


@pytest.mark.parametrize("name", ["smtp", "submission", "submissions"])
async def test_connections_per_address_are_limited(
        limited: Runtime, client_tls: ssl.SSLContext, name: str) -> None:
    conns = []
    for _ in range(LIMIT):
        conn, greeting = await _connect(limited, name, client_tls)
        assert greeting.startswith("220 ")
        conns.append(conn)
    # One more from the same address: refused at once, and closed.
    extra, greeting = await _connect(limited, name, client_tls)
    assert greeting == "421 4.7.0 Too many connections from your address\r\n"
    assert await asyncio.wait_for(extra.reader.read(), 5) == b""
    extra.close()
    # Another address is counted apart.
    other, greeting = await _connect(limited, name, client_tls, source="127.0.0.2")
    assert greeting.startswith("220 ")
    other.close()
    # The open sessions still work; once one ends, its slot is free again.
    assert (await conns[0].cmd("EHLO client.test")).startswith("250")
    assert (await conns[0].cmd("QUIT")).startswith("221")
    conns[0].close()
    for _ in range(50):
        await asyncio.sleep(0.05)
        again, greeting = await _connect(limited, name, client_tls)
        again.close()
        if greeting.startswith("220 "):
            break
    assert greeting.startswith("220 ")
    for conn in conns[1:]:
        conn.close()


async def test_failed_starttls_handshakes_give_their_slot_back(
        limited: Runtime, client_tls: ssl.SSLContext) -> None:
    """A STARTTLS whose handshake fails must end the session (and free its slot)."""
    for _ in range(2 * LIMIT):
        conn, greeting = await _connect(limited, "smtp", client_tls)
        assert greeting.startswith("220 ")
        assert (await conn.cmd("EHLO client.test")).startswith("250")
        assert (await conn.cmd("STARTTLS")).startswith("220 ")
        conn.writer.write(b"this is not a TLS ClientHello\r\n" * 4)
        assert await asyncio.wait_for(conn.reader.read(), 5) == b""
        conn.close()
    await asyncio.sleep(0.2)
    conns = []
    for _ in range(LIMIT):
        conn, greeting = await _connect(limited, "smtp", client_tls)
        assert greeting.startswith("220 "), greeting
        conns.append(conn)
    for conn in conns:
        conn.close()


async def test_header_section_over_100_kib_is_refused_at_submission(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    doctor = await add_pro(services)
    filler = "".join(f"X-Filler-{i:05d}: {'h' * 80}\r\n" for i in range(1300)).encode()
    big = message(doctor.address, doctor.address, subject="big header")
    big = big.replace(b"MIME-Version", filler + b"MIME-Version", 1)
    assert len(big) > 100 * 1024

    def run() -> tuple[int, bytes]:
        with submission(runtime, client_tls, doctor.address) as c:
            c.sendmail(doctor.address, [doctor.address], message(doctor.address, doctor.address))
            with pytest.raises(smtplib.SMTPDataError) as err:
                c.sendmail(doctor.address, [doctor.address], big)
            c.sendmail(doctor.address, [doctor.address],
                       message(doctor.address, doctor.address, subject="after"))
            return err.value.smtp_code, err.value.smtp_error

    code, text = await asyncio.to_thread(run)
    assert (code, text) == (552, b"5.3.4 Message header too large")
    assert (await services.store.get_folder(doctor.id, "INBOX")).message_count == 2
