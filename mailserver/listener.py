"""Accepting on a listening socket shared by ``serve --workers``'s processes, fairly.

When N processes wait on one inherited listening socket, each wakes up for every pending
connection and the first to call ``accept`` takes it; asyncio's own accept loop then takes
every other pending connection too. Long-lived IMAP and SMTP sessions pile up on whichever
worker was idle when a burst of clients arrived (measured: five persistent IMAP clients, one
worker serving 96 % of the commands while the other slept).

:class:`LoadTable` is a small table in memory shared by the parent and its children (an
anonymous ``mmap`` made before the fork): each worker writes the number of connections it
holds into its own slot. :class:`BalancedServer` accepts a pending connection only when its
worker holds no more connections than the least loaded live worker, or when it has waited
:data:`MAX_DEFER` for the others to take it (a busy or stuck worker never stalls a client for
longer). Accepted sockets are handed to the event loop with ``connect_accepted_socket``, so
TLS and the protocol objects are the loop's own, as with ``create_server``.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import socket
import ssl
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["MAX_DEFER", "BalancedServer", "LoadTable", "serve_balanced", "stream_factory"]

log = logging.getLogger(__name__)

MAX_DEFER = 0.05
"""Longest time a worker leaves a pending connection to less loaded workers (seconds)."""
_RECHECK = 0.005
_ABSENT = 2 ** 62  # a slot whose worker is not running: never the least loaded
_SLOT = struct.Struct("q")
_BATCH = 16  # most connections taken at one wake-up, then other ready callbacks run


class LoadTable:
    """Open connections per worker, in memory shared across ``fork``.

    The parent creates it before starting the workers; worker ``index`` only writes its own
    slot (one aligned 8-byte word), so no lock is needed and a reader sees a recent value.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._mem = mmap.mmap(-1, _SLOT.size * slots)
        for i in range(slots):
            self._put(i, _ABSENT)

    def _put(self, index: int, value: int) -> None:
        _SLOT.pack_into(self._mem, index * _SLOT.size, value)

    def get(self, index: int) -> int:
        return int(_SLOT.unpack_from(self._mem, index * _SLOT.size)[0])

    def absent(self, index: int) -> None:
        """The parent: worker ``index`` died or has not started."""
        self._put(index, _ABSENT)

    def worker(self, index: int) -> WorkerLoad:
        return WorkerLoad(self, index)


class WorkerLoad:
    """One worker's view of the table: its own count, written here, and the others'."""

    def __init__(self, table: LoadTable, index: int) -> None:
        self.table, self.index, self.count = table, index, 0
        table._put(index, 0)

    def opened(self) -> None:
        self.count += 1
        self.table._put(self.index, self.count)

    def closed(self) -> None:
        self.count -= 1
        self.table._put(self.index, self.count)

    def others_least(self) -> int:
        return min((self.table.get(i) for i in range(self.table.slots) if i != self.index),
                   default=_ABSENT)

    def busier(self) -> bool:
        """Whether another live worker holds fewer connections than this one."""
        return self.count > self.others_least()


ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def stream_factory(client_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                              Coroutine[Any, Any, None]]) -> ProtocolFactory:
    """The protocol factory ``asyncio.start_server`` builds around a stream callback."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.BaseProtocol:
        reader = asyncio.StreamReader(loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected, loop=loop)

    return factory


class BalancedServer:
    """Serves a shared listening socket; duck-types the parts of ``asyncio.Server`` the
    runtime uses (``sockets``, ``close``, ``wait_closed``)."""

    def __init__(self, sock: socket.socket, factory: ProtocolFactory,
                 tls: ssl.SSLContext | None, load: WorkerLoad) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock, self._factory, self._tls, self._load = sock, factory, tls, load
        self.sockets = (sock,)
        self._pending: set[asyncio.Task[None]] = set()
        self._deferred_since: float | None = None
        self._last_check = 0.0
        self._recheck: asyncio.TimerHandle | None = None
        self._closed = False
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(_BATCH):
            if self._load.busier():
                now = time.monotonic()
                # A new wait unless this is the recheck of one still going on (another
                # worker may have taken the connection this one left, ending it unseen).
                if self._deferred_since is None or now - self._last_check > MAX_DEFER:
                    self._deferred_since = now
                self._last_check = now
                if now - self._deferred_since < MAX_DEFER:
                    self._pause(_RECHECK)
                    return
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                self._deferred_since = None
                return
            except OSError as exc:  # e.g. out of file descriptors: breathe, then go on
                log.warning("listener: accept failed (%s)", exc.strerror)
                self._pause(0.1)
                return
            self._deferred_since = None
            conn.setblocking(False)
            self._load.opened()
            task = self._loop.create_task(self._connect(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _pause(self, delay: float) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._recheck = self._loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._recheck = None
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._ready)

    async def _connect(self, conn: socket.socket) -> None:
        load = self._load
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                load.closed()

        def counted() -> asyncio.BaseProtocol:
            proto = self._factory()
            lost = proto.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                try:
                    lost(exc)
                finally:
                    release()

            setattr(proto, "connection_lost", connection_lost)  # noqa: B010
            return proto

        try:
            await self._loop.connect_accepted_socket(counted, conn, ssl=self._tls)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - handshake failed
            conn.close()  # a failed TLS handshake: no protocol was connected
            release()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._recheck is not None:
            self._recheck.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        for task in self._pending:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=1)


async def serve_balanced(sock: socket.socket, factory: ProtocolFactory,
                         tls: ssl.SSLContext | None, load: WorkerLoad) -> BalancedServer:
    """Start accepting on ``sock`` (already listening, shared with other workers)."""
    return BalancedServer(sock, factory, tls, load)
