"""Fair accepting on a listening socket shared by workers (``mailserver.listener``).

Two :class:`BalancedServer` on one listening socket, each with its own slot in one
:class:`LoadTable`, stand for two ``serve --workers`` processes: connections made one after
the other go to the worker holding fewer; a worker that does not take its turn (stuck) delays
a connection by at most ``MAX_DEFER``; closed connections and failed TLS handshakes give their
slot back; a dead worker's slot is never the least loaded. Real sockets, real TLS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

from mailserver.listener import MAX_DEFER, BalancedServer, LoadTable, serve_balanced
from mailserver.tls import server_context


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"hello\r\n")

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


async def _settle(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.01)


async def _connect(port: int, tls: ssl.SSLContext | None = None
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None)
    assert await reader.readline() == b"hello\r\n"
    return reader, writer


async def test_connections_go_to_the_worker_holding_fewer() -> None:
    sock = _listening()
    port = sock.getsockname()[1]
    table = LoadTable(2)
    a, b = table.worker(0), table.worker(1)
    servers = [await serve_balanced(sock.dup(), Echo, None, a),
               await serve_balanced(sock.dup(), Echo, None, b)]
    sock.close()
    conns = []
    try:
        for n in range(1, 9):
            conns.append(await _connect(port))
            await _settle(lambda n=n: a.count + b.count == n)  # type: ignore[misc]
            assert abs(a.count - b.count) <= 1
        assert (a.count, b.count) == (4, 4)
        assert (table.get(0), table.get(1)) == (4, 4)
        for _, writer in conns[:3]:  # closing gives the slot back
            writer.close()
        await _settle(lambda: a.count + b.count == 5)
        assert a.count + b.count == 5
        conns = conns[3:]
        for _ in range(3):
            conns.append(await _connect(port))
        await _settle(lambda: a.count + b.count == 8)
        assert (a.count, b.count) == (4, 4)
    finally:
        for _, writer in conns:
            writer.close()
        for server in servers:
            server.close()
            await server.wait_closed()


async def test_a_worker_that_does_not_take_its_turn_delays_at_most_max_defer() -> None:
    sock = _listening()
    port = sock.getsockname()[1]
    table = LoadTable(2)
    busy = table.worker(0)
    idle_but_stuck = table.worker(1)  # its slot says 0 connections; it never accepts
    busy.opened()
    server = await serve_balanced(sock, Echo, None, busy)
    try:
        started = time.monotonic()
        _, writer = await _connect(port)
        waited = time.monotonic() - started
        assert MAX_DEFER * 0.8 <= waited < MAX_DEFER + 1.0
        assert busy.count == 2 and idle_but_stuck.count == 0
        writer.close()
        table.absent(1)  # the parent saw it die: no more waiting for it
        started = time.monotonic()
        _, writer = await _connect(port)
        assert time.monotonic() - started < MAX_DEFER
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_failed_tls_handshake_gives_its_slot_back(data_dir: Path,
                                                         client_tls: ssl.SSLContext) -> None:
    tls = server_context(data_dir / "tls" / "server.pem", data_dir / "tls" / "server.key")
    sock = _listening()
    port = sock.getsockname()[1]
    load = LoadTable(1).worker(0)
    server: BalancedServer = await serve_balanced(sock, Echo, tls, load)
    try:
        reader, writer = await _connect(port, client_tls)  # TLS works
        assert load.count == 1
        writer.write(b"ping\r\n")
        assert await reader.readline() == b"ping\r\n"
        writer.close()
        await _settle(lambda: load.count == 0)
        assert load.count == 0
        raw = socket.create_connection(("127.0.0.1", port))
        raw.sendall(b"EHLO this is not a TLS ClientHello\r\n" * 4)
        await _settle(lambda: load.count == 1, 1.0)
        await _settle(lambda: load.count == 0)
        raw.close()
        assert load.count == 0
    finally:
        server.close()
        await server.wait_closed()
