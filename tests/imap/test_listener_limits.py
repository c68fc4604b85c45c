"""IMAP listener hardening (issue 9): STARTTLS inside TLS, connections per client address."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import AsyncIterator

import pytest

from mailserver.app import Services
from mailserver.config import Config
from mailserver.imap.server import start_imap
from mailserver.tls import server_context
from tests.imap.conftest import Imap, open_raw


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls-port", "imaps"])
@pytest.mark.parametrize("login", [False, True], ids=["before-login", "after-login"])
async def test_starttls_inside_tls_is_bad(imap: Imap, implicit: bool, login: bool) -> None:
    """RFC 3501 6.2.1: STARTTLS once TLS is active is a BAD; the session goes on."""
    raw = await open_raw(imap, login=False, implicit=implicit)
    if not implicit:
        assert (await raw.cmd("STARTTLS"))[-1].startswith(b"t1 OK")
        await raw.writer.start_tls(imap.tls, server_hostname="localhost")
    if login:
        res = await raw.cmd(f'LOGIN "{imap.user}" "{imap.password}"')
        assert res[-1].split()[1] == b"OK", res
    res = await raw.cmd("STARTTLS")
    assert res[-1].split()[1] == b"BAD", res
    assert (await raw.cmd("NOOP"))[-1].split()[1] == b"OK"
    await raw.close()


async def test_refused_idle_does_not_stall_the_session(imap: Imap) -> None:
    """Same root as STARTTLS: a refused mode-changing command leaves the reader usable."""
    raw = await open_raw(imap, login=False)
    assert (await raw.cmd("IDLE"))[-1].split()[1] == b"BAD"
    assert (await raw.cmd("NOOP"))[-1].split()[1] == b"OK"
    await raw.close()


LIMIT = 3


@pytest.fixture
async def limited(config: Config, services: Services, client_tls: ssl.SSLContext
                  ) -> AsyncIterator[dict[str, tuple[int, ssl.SSLContext | None]]]:
    """IMAP and IMAPS listeners with ``[imap] max_connections_per_address = 3``."""
    services.config = dataclasses.replace(
        config, imap=dataclasses.replace(config.imap, max_connections_per_address=LIMIT))
    ctx = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    plain = await start_imap(services.imap_backend(), "127.0.0.1", 0, ctx, implicit_tls=False)
    implicit = await start_imap(services.imap_backend(), "127.0.0.1", 0, ctx, implicit_tls=True)
    try:
        yield {"imap": (plain.sockets[0].getsockname()[1], None),
               "imaps": (implicit.sockets[0].getsockname()[1], client_tls)}
    finally:
        for srv in (plain, implicit):
            srv.close()
        await asyncio.sleep(0)


async def _connect(port: int, tls: ssl.SSLContext | None, source: str = "127.0.0.1"
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), ssl=tls,
        server_hostname="localhost" if tls else None)
    return reader, writer, await asyncio.wait_for(reader.readline(), 5)


@pytest.mark.parametrize("name", ["imap", "imaps"])
async def test_connections_per_address_are_limited(
        limited: dict[str, tuple[int, ssl.SSLContext | None]], name: str) -> None:
    port, tls = limited[name]
    conns = []
    for _ in range(LIMIT):
        reader, writer, greeting = await _connect(port, tls)
        assert greeting.startswith(b"* OK")
        conns.append((reader, writer))
    reader, writer, greeting = await _connect(port, tls)
    assert greeting == b"* BYE Too many connections\r\n"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    # Another address is counted apart.
    _, writer, greeting = await _connect(port, tls, source="127.0.0.2")
    assert greeting.startswith(b"* OK")
    writer.close()
    # Once a session ends, its slot is free again.
    first_reader, first_writer = conns[0]
    first_writer.write(b"a LOGOUT\r\n")
    assert (await asyncio.wait_for(first_reader.read(), 5)).startswith(b"* BYE")
    first_writer.close()
    await asyncio.sleep(0.1)
    _, writer, greeting = await _connect(port, tls)
    assert greeting.startswith(b"* OK")
    writer.close()
    for _, w in conns[1:]:
        w.close()
