"""The IMAP driver: sockets, TLS, literals, IDLE.  The only IMAP module writing bytes.

Theory of operation
-------------------
One :class:`Connection` per client.  Bytes read from the socket go to the sans-I/O
:class:`~mailserver.imap.parser.Receiver`; its events are handled in order:

* ``NeedLiteral`` → ``+ Ready`` (RFC 3501 7.5);
* ``Invalid`` → ``tag BAD text``; after :data:`MAX_BAD` consecutive bad commands the
  connection is closed with ``* BYE``;
* a command → :meth:`Session.handle`, whose untagged output and tagged line are buffered and
  written with one ``write`` + ``drain`` when the command completes.

Output batching: every response line goes through :meth:`Connection.send` into a per-connection
buffer; :meth:`Connection.flush` writes it at once (one TLS record, one ``send`` instead of one
per line: a 100-message FETCH used to cost 100+ syscalls).  The buffer is flushed when a command
(or an invalid line) has been answered, before waiting for client input (a literal, an
AUTHENTICATE continuation, IDLE's ``DONE``), after each IDLE notification burst, and whenever
it grows past :data:`FLUSH_LIMIT` so a huge FETCH streams instead of piling up in memory.
Order is unchanged: bytes leave in the order they were sent.

Actions returned by the session: ``starttls`` (RFC 3501 6.2.1: the receiver drops anything the
client pipelined in clear, then TLS starts on the same socket), ``challenge`` (AUTHENTICATE
without an initial response: ``+`` then one continuation line), ``idle`` (RFC 2177: wait for
``DONE`` while pushing mailbox changes as soon as the store publishes them, or at least every
:data:`IDLE_POLL` seconds), ``logout``.

Limits: ``[imap] max_connections_per_address`` connections per client address on each
listener (more get ``* BYE Too many connections``); line 64 kB, literal
``config.imap.max_literal``; 2 minutes to log in; the autologout
timer (RFC 3501 5.4) is ``config.imap.idle_timeout`` once authenticated.  A failure inside one
session is logged with its connection id and answered NO; it never touches another session.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
import socket
import ssl
import zlib
from collections import deque

from mailserver.connlimit import ConnectionLimiter, peer_address
from mailserver.listener import BalancedServer, WorkerLoad, serve_balanced, stream_factory

from . import commands as c
from . import encoder as enc
from .backend import ImapBackend, Response
from .parser import ContinuationLine, Event, IdleDone, Invalid, NeedLiteral, Receiver
from .state import Session

__all__ = ["start_imap", "Connection", "MAX_BAD", "IDLE_POLL"]

log = logging.getLogger(__name__)

MAX_BAD = 20
IDLE_POLL = 30.0
FLUSH_LIMIT = 256 * 1024
LOGIN_TIMEOUT = 120.0
MAX_LINE = 65536  # RFC 7162 4 asks for at least 8192; long UID sets from clients
MAX_TAG = 64
TOO_MANY_CONNECTIONS = b"* BYE Too many connections\r\n"
_ids = itertools.count(1)


class _Closed(Exception):
    """The peer went away or the session ended."""


class Connection:
    """Drives one IMAP session over an asyncio stream pair."""

    def __init__(self, backend: ImapBackend, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, tls_ctx: ssl.SSLContext, *,
                 implicit_tls: bool) -> None:
        self.backend = backend
        self.reader = reader
        self.writer = writer
        self.tls_ctx = tls_ctx
        self.conn_id = f"i{next(_ids)}"
        peer = writer.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.receiver = Receiver(max_line=MAX_LINE,
                                 max_literal=backend.config.max_literal)
        self.session = Session(backend, self.send, tls=implicit_tls,
                               starttls_port=not implicit_tls, peer=self.peer,
                               conn_id=self.conn_id)
        self.events: deque[Event] = deque()
        self.session.input_waiting = self._input_waiting
        self.bad = 0
        self._out: list[bytes] = []
        self._out_size = 0
        self._deflate: zlib._Compress | None = None  # RFC 4978 COMPRESS=DEFLATE
        self._inflate: zlib._Decompress | None = None

    async def send(self, data: bytes) -> None:
        """Queue response octets; written by :meth:`flush` (at once past :data:`FLUSH_LIMIT`)."""
        if self.writer.is_closing():
            raise _Closed
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size > FLUSH_LIMIT:
            await self.flush()

    async def flush(self) -> None:
        """Write the queued octets with one ``write`` and wait for the transport to drain."""
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            self._out_size = 0
            if self.writer.is_closing():
                raise _Closed
            if self._deflate is not None:  # RFC 4978: one sync flush per write
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self.writer.write(data)
        await self.writer.drain()

    async def _read(self) -> None:
        timeout = (LOGIN_TIMEOUT if self.session.account is None
                   else self.backend.config.idle_timeout)
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            await self.send(enc.bye("autologout: idle for too long"))
            await self.flush()
            raise _Closed from None
        if not data:
            raise _Closed
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse received octets, inflated first once COMPRESS is active (at most 1 MiB of
        output per step, so a small input cannot expand unchecked at once)."""
        if self._inflate is None:
            self.events.extend(self.receiver.feed(data))
            return
        try:
            while data:
                out = self._inflate.decompress(data, 1 << 20)
                data = self._inflate.unconsumed_tail
                self.events.extend(self.receiver.feed(out))
        except zlib.error:
            raise _Closed from None

    def _input_waiting(self) -> bool:
        """The client sent more than the command being handled: a parsed command waits, or
        octets arrived meanwhile (the stream's buffer, filled while the command ran)."""
        return (any(isinstance(ev, c.Command) for ev in self.events)
                or bool(getattr(self.reader, "_buffer", b"")))

    async def _next(self) -> Event:
        while not self.events:
            await self.flush()
            await self._read()
        return self.events.popleft()

    async def run(self) -> None:
        """Serve the connection until LOGOUT, EOF or a fatal error."""
        log.info("imap[%s]: connect", self.conn_id)
        try:
            await self.send(enc.untagged("OK", "MSSante IMAP4rev1 server ready",
                                         code=enc.ResponseCode.capability(self.session.caps())))
            while self.session.state != "logout":
                await self._event(await self._next())
                await self.flush()
            await self.flush()
        except (_Closed, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except Exception:  # noqa: BLE001 - one broken session must not affect the others
            log.exception("imap[%s]: connection failed", self.conn_id)
        finally:
            self.session.close()
            self.writer.close()
            log.info("imap[%s]: disconnect", self.conn_id)

    async def _event(self, ev: Event) -> None:
        if isinstance(ev, NeedLiteral):
            await self.send(enc.continuation("Ready for literal data"))
        elif isinstance(ev, Invalid):
            await self._bad(ev.tag, ev.text)
        elif isinstance(ev, c.Command):
            await self._command(ev)
        elif isinstance(ev, IdleDone):
            await self._bad(ev.tag, "DONE without IDLE")
        elif isinstance(ev, ContinuationLine):
            await self._bad(None, "unexpected continuation")

    async def _bad(self, tag: str | None, text: str) -> None:
        self.bad += 1
        if tag is not None and len(tag) > MAX_TAG:  # junk taken for a tag: do not echo it
            tag = None
        await self.send(enc.tagged(tag, "BAD", text) if tag else b"* BAD " +
                        text.encode("ascii", "replace") + b"\r\n")
        if self.bad >= MAX_BAD:
            await self.send(enc.bye("too many invalid commands"))
            self.session.state = "logout"

    async def _command(self, cmd: c.Command) -> None:
        resp = await self.session.handle(cmd)
        if resp.status != "BAD":
            self.bad = 0
        else:
            self.bad += 1
        if resp.action == "starttls":
            await self.send(resp.encode(cmd.tag))
            await self.flush()
            self.receiver.discard_buffered()  # CVE-2011-0411: nothing pipelined in clear
            self.events.clear()
            # Clear-text bytes that reached the stream after our last read must not be
            # read as TLS-protected commands either (StreamReader keeps them across start_tls).
            buffered = getattr(self.reader, "_buffer", None)
            if isinstance(buffered, bytearray):
                buffered.clear()
            await self.writer.start_tls(self.tls_ctx)
            self.session.tls = True
        elif resp.action == "compress":
            await self.send(resp.encode(cmd.tag))
            await self.flush()
            rest = self.receiver.take_buffered()
            self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._inflate = zlib.decompressobj(-15)
            self._feed(rest)
        elif resp.action == "challenge":
            await self._challenge(cmd.tag)
        elif resp.action == "idle":
            await self._idle(cmd.tag)
        else:
            await self.send(resp.encode(cmd.tag))
            if self.receiver.paused:
                # A mode-changing command (STARTTLS inside TLS, IDLE or AUTHENTICATE) was
                # refused: read the next commands as commands again.
                self.events.extend(self.receiver.resume())
            if self.bad >= MAX_BAD:
                await self.send(enc.bye("too many invalid commands"))
                self.session.state = "logout"

    async def _challenge(self, tag: str) -> None:
        await self.send(b"+ \r\n")
        self.events.extend(self.receiver.expect_continuation())
        ev = await self._next()
        if not isinstance(ev, ContinuationLine):
            self.events.appendleft(ev)
            self.events.extend(self.receiver.resume())
            await self.send(enc.tagged(tag, "BAD", "expected an AUTHENTICATE response"))
            return
        if ev.cancelled:
            resp = Response("BAD", "AUTHENTICATE cancelled")
        else:
            try:
                data = base64.b64decode(ev.data.strip(), validate=True)
            except (binascii.Error, ValueError):
                data = None
            resp = (Response("BAD", "invalid base64") if data is None
                    else await self.session.sasl_plain(data))
        await self.send(resp.encode(tag))
        self.events.extend(self.receiver.resume())

    async def _idle(self, tag: str) -> None:
        session = self.session
        await self.send(enc.continuation("idling"))
        self.events.extend(self.receiver.start_idle(tag))
        await session.notify()
        assert session.events is not None
        changed = session.events
        read: asyncio.Task[None] | None = None
        try:
            while True:
                while self.events:
                    ev = self.events.popleft()
                    if isinstance(ev, IdleDone):
                        await self.send(enc.tagged(tag, "OK", "IDLE terminated"))
                        return
                    if isinstance(ev, Invalid):
                        await self.send(enc.tagged(tag, "BAD", ev.text))
                        return
                await self.flush()
                if read is None:
                    read = asyncio.ensure_future(self._read())
                waiter = asyncio.ensure_future(changed.wait())
                done, _ = await asyncio.wait({read, waiter}, timeout=IDLE_POLL,
                                             return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if read in done:
                    task, read = read, None
                    task.result()  # re-raises _Closed / timeouts
                await session.notify()  # clears ``changed``
                if session.state == "logout":
                    return
        finally:
            if read is not None:
                read.cancel()


async def start_imap(backend: ImapBackend, host: str, port: int, tls_ctx: ssl.SSLContext,
                     implicit_tls: bool, sock: socket.socket | None = None,
                     load: WorkerLoad | None = None) -> asyncio.Server | BalancedServer:
    """Listen for IMAP clients: STARTTLS port (143 role) or implicit TLS (993 role).

    At most ``[imap] max_connections_per_address`` connections from one client address are
    served at a time; more are answered ``* BYE`` and closed before any session is set up.
    """
    limiter = ConnectionLimiter(backend.config.max_connections_per_address, "imap")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = peer_address(writer.get_extra_info("peername"))
        if not limiter.acquire(address):
            log.warning("imap: connection limit reached (%d per address), refusing",
                        limiter.limit)
            writer.write(TOO_MANY_CONNECTIONS)
            writer.close()
            return
        try:
            await Connection(backend, reader, writer, tls_ctx, implicit_tls=implicit_tls).run()
        except asyncio.CancelledError:  # server shutting down: the connection just ends
            writer.close()
        finally:
            limiter.release(address)

    if sock is not None and load is not None:  # shared with the other workers: fair accept
        return await serve_balanced(sock, stream_factory(on_connect),
                                    tls_ctx if implicit_tls else None, load)
    if sock is not None:  # an inherited listening socket
        return await asyncio.start_server(on_connect, sock=sock,
                                          ssl=tls_ctx if implicit_tls else None)
    return await asyncio.start_server(on_connect, host, port,
                                      ssl=tls_ctx if implicit_tls else None)
