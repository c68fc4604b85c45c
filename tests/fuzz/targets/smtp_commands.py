"""The SMTP command loop: aiosmtpd's parser with our ``OperatorSMTP`` (DSN parameters, the fast
path parser of addresses, the chunked DATA reader, the error and byte budgets).

Each input is one client session written to a real socket pair and closed; the server runs on
one event loop kept across inputs. The session must end by itself (a hang is a finding) and
no command may reach ``handle_exception`` (the server would answer ``451`` and log a
traceback: an internal error, not a client one).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import AuthResult, Envelope, Session

from mailserver.smtp.server import OperatorSMTP

_LOOP = asyncio.new_event_loop()


class _Handler:
    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.content, bytes)
        return "250 2.0.0 OK"


def _authenticate(*_args: object) -> AuthResult:
    return AuthResult(success=False, handled=False)


class CountingSMTP(OperatorSMTP):
    """Counts the bytes it received, so a session is closed only after all arrived."""

    received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        super().data_received(data)


class _Server(CountingSMTP):
    def __init__(self) -> None:
        super().__init__(
            _Handler(), hostname="mx.fuzz.test", ident="fuzz", data_size_limit=4096,
            enable_SMTPUTF8=True, decode_data=False, timeout=5, max_errors=50,
            header_size_limit=1024, max_command_bytes=64 * 1024, data_timeout=5,
            authenticator=_authenticate, auth_require_tls=False, loop=_LOOP,
        )
        self.errors: list[BaseException] = []

    async def handle_exception(self, error: Exception) -> str:
        self.errors.append(error)
        return await super().handle_exception(error)


async def _consumed(loop: asyncio.AbstractEventLoop, server: CountingSMTP, sent: int) -> None:
    """Wait until the server has received everything sent and waits for more (or closed): a
    client EOF cancels aiosmtpd's command loop, so it must come after the last command (also
    when a command awaits the database). A reader with a waiter has no complete line left."""
    deadline = loop.time() + 5
    reader: Any = server._reader
    while server.transport is not None and (server.received < sent or reader._waiter is None):
        if loop.time() > deadline:
            raise TimeoutError("the session did not consume its input within 5 s")
        await asyncio.sleep(0)


async def consumed_session(loop: asyncio.AbstractEventLoop,
                           factory: Callable[[], CountingSMTP], data: bytes) -> bytes:
    """Send ``data`` to a server made by ``factory`` over a socket pair, wait until it is
    consumed, close the client's side; the server's replies."""
    server_sock, client_sock = socket.socketpair()
    client_sock.setblocking(False)
    holder: list[CountingSMTP] = []

    def make() -> CountingSMTP:
        holder.append(factory())
        return holder[0]

    transport, _ = await loop.create_connection(make, sock=server_sock)
    replies = bytearray()
    try:
        await loop.sock_sendall(client_sock, data)
        await _consumed(loop, holder[0], len(data))
        client_sock.shutdown(socket.SHUT_WR)
        while chunk := await asyncio.wait_for(loop.sock_recv(client_sock, 65536), 10):
            replies += chunk
    finally:
        transport.close()
        client_sock.close()
        await asyncio.sleep(0)
    return bytes(replies)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    servers: list[_Server] = []

    def factory() -> _Server:
        servers.append(_Server())
        return servers[0]

    replies = _LOOP.run_until_complete(consumed_session(_LOOP, factory, data))
    if servers and servers[0].errors:
        raise servers[0].errors[0]
    assert replies.startswith(b"220 ")
    assert b"451 4.3.0" not in replies
