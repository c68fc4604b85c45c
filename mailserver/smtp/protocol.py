"""aiosmtpd ``SMTP`` subclass: a fast DATA reader and per-connection limits.

Theory of operation
-------------------
aiosmtpd owns the wire; this module changes only what a measurement demanded (see
``/work/shared/PERFORMANCE.md`` and ``bench/data_reader.py``) plus hardening:

* **DATA** (RFC 5321 4.1.1.4, 4.5.2). aiosmtpd reads mail data one line at a time (~19 ms of
  CPU per MiB). :class:`DataDecoder` is a sans-I/O decoder fed with large chunks: it finds the
  end-of-data marker with one incremental ``find`` and un-stuffs dots with one ``replace``.
  A virtual CRLF is put in front of the data, because the CRLF that ended the ``DATA``
  command line is the one that makes a first line of ``.`` the terminator.

  - Only ``CRLF "." CRLF`` ends the data. Bare LF or bare CR around a dot never does
    ("SMTP smuggling", SEC Consult, December 2023). Optionally (default on) a message that
    *contains* such an ambiguous dot line is refused with 550 5.6.0 so that it is never relayed
    to a server that would read it as an end of data.
  - Lines of any length are accepted (RFC 5321 4.5.3.1: "implementation techniques that impose
    no limits on the length of these objects should be used"); memory is bounded by the size
    limit, not by line length.
  - Size limit (RFC 1870, RFC 5321 4.5.3.1.10): counted on the received (stuffed) bytes,
    terminator excluded, like aiosmtpd. Once over the limit the decoder keeps only the last four
    bytes (to spot a terminator split across reads), reads on to the end marker and the reply
    is ``552 5.3.4``; the connection stays usable.
  - Header section limit (``header_size_limit``): a message whose header section (up to the
    first empty line, or the whole message without one) is larger is refused like an
    oversized one: the decoder stops buffering, reads on to the end marker and the reply is
    ``552 5.3.4 Message header too large``; the connection stays usable. Postfix cuts headers
    at 100 KB (``header_size_limit``); without a limit 10 MB of headers reached the parsers.
  - What ``handle_DATA`` receives is unchanged: ``envelope.original_content`` is the un-stuffed
    bytes and ``envelope.content`` the same bytes (or ``str`` when ``decode_data=True``).

* **Limits.** Every 4xx/5xx reply counts as an error; after ``max_errors`` the server answers
  ``421 4.7.0`` and closes (Postfix ``smtpd_hard_error_limit``). The bytes of all command lines
  of a connection are bounded by ``max_command_bytes`` (a client cannot keep a connection for
  ever with NOOPs). Single command lines stay bounded by aiosmtpd (512 octets, RFC 5321
  4.5.3.1.4). ``timeout`` is the idle timeout (RFC 5321 4.5.3.2.7); during DATA it is re-armed
  on every chunk and the whole DATA phase is bounded by ``data_timeout``.

* **Connections.** ``connection_limiter`` counts the listener's open connections per client
  address; over its limit a connection is answered ``421 4.7.0 Too many connections from your
  address`` and closed before aiosmtpd allocates anything for it. A STARTTLS whose handshake
  fails ends the session (asyncio never reports that connection's end to the protocol).

* **STARTTLS** (RFC 3207 4.2) once TLS is active (after STARTTLS, or on an implicit-TLS
  listener) is answered ``554 5.5.1 TLS already active``, as Postfix does; aiosmtpd would
  start a second handshake inside the first.

* **Errors.** :meth:`MailSMTP.handle_exception` replies ``451 4.3.0 Internal error (ref <id>)``
  and logs the traceback with the connection id; exception text never reaches the client.

The class knows nothing of the database or policy: it calls the handler hooks as aiosmtpd does.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Session, TLSSetupException, syntax

from mailserver import logs
from mailserver.connlimit import ConnectionLimiter, peer_address

__all__ = [
    "DataDecoder",
    "MailSMTP",
    "MailSession",
    "find_ambiguous_dot",
    "REPLY_TOO_BIG",
    "REPLY_AMBIGUOUS_DOT",
    "REPLY_TOO_MANY_ERRORS",
    "REPLY_TOO_MANY_COMMANDS",
    "REPLY_TLS_ACTIVE",
    "REPLY_HEADER_TOO_BIG",
    "REPLY_TOO_MANY_CONNECTIONS",
]

log = logging.getLogger(__name__)

END_MARK = b"\r\n.\r\n"
"""RFC 5321 4.1.1.4: the only end-of-data indication."""

_VIRTUAL_CRLF = b"\r\n"
_STUFFED_LINE = b"\r\n."
# Dot lines delimited by at least one bare CR or bare LF: the SMTP smuggling sequences. The
# exact CRLF.CRLF cannot occur inside the data (it would have ended it).
# Searching the data with CR mapped to LF needs one scan for all four of them.
_CR_TO_LF = bytes.maketrans(b"\r", b"\n")

REPLY_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
"""RFC 5321 4.5.3.1.10 / RFC 1870 section 6.3, enhanced code RFC 3463 5.3.4."""
REPLY_HEADER_TOO_BIG = "552 5.3.4 Message header too large"
"""The header section is over ``header_size_limit`` (RFC 3463 5.3.4, as for the size)."""
REPLY_AMBIGUOUS_DOT = "550 5.6.0 Message contains a dot line with bare CR or LF"
REPLY_TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
REPLY_TOO_MANY_COMMANDS = "421 4.7.0 Too many commands, closing connection"
REPLY_START_DATA = "354 End data with <CR><LF>.<CR><LF>"
REPLY_TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address"
REPLY_TLS_ACTIVE = "554 5.5.1 TLS already active"
"""RFC 3207 4.2: no second STARTTLS inside TLS (Postfix answers the same)."""

NOT_ERRORS = (b"452 4.5.3",)
"""Replies that do not count towards ``max_errors``: ``452 4.5.3`` too many recipients is not a
client error; the transaction goes on with the recipients already accepted and the client sends
the others in another one (RFC 5321 4.5.3.1.10)."""

DEFAULT_CHUNK = 256 * 1024
"""Largest read during DATA; also the StreamReader high-water mark while in DATA."""


def find_ambiguous_dot(stuffed: bytes | bytearray) -> int:
    """Return the offset of the first dot line with a bare CR/LF delimiter, or -1.

    Args:
        stuffed: data as received (still dot-stuffed), preceded by the virtual CRLF.
    """
    return _ambiguous_in(stuffed.translate(_CR_TO_LF))


def _ambiguous_in(translated: bytes | bytearray) -> int:
    # With CR mapped to LF every smuggling sequence reads "\n.\n"; so would CRLF.CRLF, which
    # cannot occur inside the data.
    return translated.find(b"\n.\n")


def _has_dot_line(buf: bytearray) -> bool:
    """True if some "." directly follows a CR or LF (``buf`` starts with the virtual CRLF)."""
    i = buf.find(b".", 1)
    while i >= 0:
        if buf[i - 1] in (10, 13):
            return True
        i = buf.find(b".", i + 1)
    return False


class DataDecoder:
    """Sans-I/O decoder of SMTP mail data (RFC 5321 4.1.1.4 and 4.5.2).

    Feed it the bytes that follow the 354 reply, in chunks of any size. When :attr:`done`
    becomes true, :meth:`feed` has returned the bytes that followed the end marker (they belong
    to the next command) and :meth:`content` gives the un-stuffed message.

    The header section is the data up to and including the line end before the first empty
    line (a line end is LF, alone or after CR); data without an empty line is all header.

    Args:
        size_limit: largest accepted message (stuffed bytes, terminator excluded); ``None`` for
            no limit.
        header_limit: largest accepted header section (stuffed bytes); ``None`` for no limit.
    """

    __slots__ = (
        "_buf", "_scan", "_limit", "_received", "_dot_lines", "done", "too_big", "ambiguous",
        "_header_limit", "_hscan", "_in_header", "header_too_big",
    )

    def __init__(self, size_limit: int | None = None, header_limit: int | None = None) -> None:
        self._buf = bytearray(_VIRTUAL_CRLF)
        self._scan = 0
        self._limit = size_limit
        self._received = 0
        self._dot_lines = True
        self._header_limit = header_limit
        self._hscan = 0
        self._in_header = header_limit is not None
        self.done = False
        """The end marker has been seen."""
        self.too_big = False
        """More than ``size_limit`` bytes arrived; the content was discarded."""
        self.header_too_big = False
        """The header section is over ``header_limit``; the content was discarded."""
        self.ambiguous = False
        """The data contains a dot line delimited by a bare CR or LF (smuggling attempt)."""

    @property
    def received(self) -> int:
        """Stuffed bytes received so far, excluding the end marker once it is seen."""
        return self._received

    @property
    def buffered(self) -> int:
        """Bytes held in memory (bounded by the size limit plus one chunk)."""
        return len(self._buf)

    def _discarding(self) -> bool:
        return self.too_big or self.header_too_big

    def _header_end(self, end: int) -> int:
        """Index in the buffer of the LF ending the header section, searched up to ``end``;
        -1 when not seen yet. The buffer starts with the virtual CRLF, so data that begins
        with an empty line has an empty header section."""
        buf, start = self._buf, self._hscan
        found = [i for i in (buf.find(b"\n\n", start, end), buf.find(b"\n\r\n", start, end))
                 if i >= 0]
        # A blank line may yet complete across the next read: look again from 2 bytes back.
        self._hscan = max(end - 2, 0)
        return min(found) if found else -1

    def _check_header(self, end: int, final: bool) -> None:
        """Follow the header section in ``buf[:end]`` (all data when ``final``)."""
        if not self._in_header or self._discarding():
            return
        assert self._header_limit is not None
        idx = self._header_end(end)
        if idx >= 0:
            self._in_header = False
            size = idx - 1  # data bytes up to and including that LF (virtual CRLF excluded)
        elif final:
            self._in_header = False
            size = self._received  # no empty line: the whole message is header
        else:
            # Any later end of the header section lies past all but the last 2 bytes.
            size = self._received - 2
        if size > self._header_limit:
            self.header_too_big = True

    def feed(self, data: bytes) -> bytes:
        """Consume *data*; return what follows the end marker (``b""`` until then).

        Raises:
            RuntimeError: if called after the end marker was seen.
        """
        if self.done:
            raise RuntimeError("DataDecoder already finished")
        buf = self._buf
        buf += data
        idx = buf.find(END_MARK, self._scan)
        if idx < 0:
            self._received += len(data)
            # Up to two trailing bytes (".\r") may yet turn out to be the end marker.
            if self._limit is not None and self._received - 2 > self._limit:
                self.too_big = True
            self._check_header(len(buf), final=False)
            if self._discarding():
                # Keep the last four bytes: the end marker may be split across reads.
                del buf[:-4]
            self._scan = max(len(buf) - (len(END_MARK) - 1), 0)
            return b""
        self.done = True
        end = idx + len(END_MARK)
        rest = bytes(buf[end:])
        # buf[:idx + 2] is the virtual/previous CRLF plus the data up to and including the CRLF
        # that precedes the final dot: that CRLF is part of the message.
        del buf[idx + 2 :]
        self._received += len(data) - len(rest) - 3
        if self._limit is not None and self._received > self._limit:
            self.too_big = True
        self._check_header(len(buf), final=True)
        if self._discarding():
            buf.clear()
        else:
            # Fast path: no dot right after a CR or LF means nothing to un-stuff and no
            # smuggling sequence (most mail; base64 has no dots at all). Dots are found with
            # memchr-speed find() calls, so a 1 MiB base64 attachment costs microseconds
            # instead of translating and scanning the whole buffer.
            self._dot_lines = _has_dot_line(buf)
            self.ambiguous = self._dot_lines and _ambiguous_in(buf.translate(_CR_TO_LF)) >= 0
        return rest

    def content(self) -> bytes:
        """The un-stuffed message (RFC 5321 4.5.2: drop the first dot of a line starting with one).

        Raises:
            RuntimeError: before the end marker, or when the message or its header section
                was too big.
        """
        if not self.done or self._discarding():
            raise RuntimeError("no content: data unfinished or over the size limit")
        buf = self._buf
        if not self._dot_lines:
            return bytes(memoryview(buf)[2:])
        return bytes(buf).replace(_STUFFED_LINE, _VIRTUAL_CRLF)[2:]


class MailSession(Session):
    """aiosmtpd session carrying the connection id used in logs and error replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_id: str) -> None:
        super().__init__(loop)
        self.conn_id = conn_id

    # aiosmtpd 1.4 sets this deprecated attribute on every successful AUTH and logs a warning
    # each time; keep the value, drop the noise.
    @property
    def login_data(self) -> Any:
        """Legacy aiosmtpd attribute (the login); prefer ``auth_data``."""
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


# RFC 5321 4.1.2 Path = "<" Mailbox ">" with a dot-atom local part and a plain domain.
_SIMPLE_PATH = re.compile(
    r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>"
    r"(.*)\Z", re.DOTALL)


class MailSMTP(SMTP):
    """aiosmtpd ``SMTP`` with a chunked DATA reader, error/command limits and safe errors.

    Takes every keyword argument of :class:`aiosmtpd.smtp.SMTP` (``data_size_limit`` is the
    RFC 1870 limit, ``timeout`` the idle timeout in seconds) plus:

    Args:
        max_errors: 4xx/5xx replies allowed before ``421`` and close.
        max_command_bytes: total bytes of command lines allowed on one connection.
        data_timeout: seconds allowed for a whole DATA transfer.
        reject_ambiguous_dot: refuse (550 5.6.0) data containing a dot line delimited by a
            bare CR or LF.
        chunk_size: largest read during DATA.
        header_size_limit: largest header section (``552 5.3.4`` beyond); ``None``: no limit.
        connection_limiter: the listener's count of open connections per client address;
            over its limit the connection is answered ``421 4.7.0`` and closed at once.
    """

    def __init__(
        self,
        handler: Any,
        *,
        max_errors: int = 20,
        max_command_bytes: int = 1024 * 1024,
        data_timeout: float = 600.0,
        reject_ambiguous_dot: bool = True,
        chunk_size: int = DEFAULT_CHUNK,
        header_size_limit: int | None = None,
        connection_limiter: ConnectionLimiter | None = None,
        **kwargs: Any,
    ) -> None:
        self.conn_id = secrets.token_hex(4)
        self.max_errors = max_errors
        self.max_command_bytes = max_command_bytes
        self.data_timeout = data_timeout
        self.reject_ambiguous_dot = reject_ambiguous_dot
        self.chunk_size = chunk_size
        self.header_size_limit = header_size_limit
        self._errors = 0
        self._command_bytes = 0
        self._closing = False
        self._limiter = connection_limiter
        self._slot: str | None = None  # the client address whose slot this connection holds
        self._refused = False
        self._lost = False
        super().__init__(handler, **kwargs)
        # Count the bytes of every recognised command line (unrecognised ones are errors).
        self._smtp_methods = {
            name: self._counted(name, method) for name, method in self._smtp_methods.items()
        }

    # -- connection set-up -------------------------------------------------------------------

    def _create_session(self) -> Session:
        return MailSession(self.loop, self.conn_id)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Bind the id before aiosmtpd creates the client task: the task copies this context,
        # so every log line of the connection carries it (mailserver.logs.ConnIdFilter).
        logs.conn_id.set(self.conn_id)
        # Called again on the same object once STARTTLS completes: count the connection once.
        if self._limiter is not None and self._slot is None and not self._refused:
            address = peer_address(transport.get_extra_info("peername"))
            if not self._limiter.acquire(address):
                # Refused before aiosmtpd sets anything up: no session, no client task.
                log.warning("connection limit reached (%d per address), refusing",
                            self._limiter.limit)
                self._refused = True
                self.transport = None
                if isinstance(transport, asyncio.WriteTransport):
                    transport.write(REPLY_TOO_MANY_CONNECTIONS.encode() + b"\r\n")
                transport.close()
                return
            self._slot = address
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        if self._slot is not None and self._limiter is not None:
            self._limiter.release(self._slot)
            self._slot = None
        if not self._refused:
            super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return False if self._refused else super().eof_received()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def _counted(
        self, name: str, method: Callable[[str | None], Awaitable[None]]
    ) -> Callable[[str | None], Awaitable[None]]:
        async def run(arg: str | None) -> None:
            # "VERB SP arg CRLF"
            self._command_bytes += len(name) + 3 + (len(arg) if arg else 0)
            if self._command_bytes > self.max_command_bytes:
                log.warning("command byte budget exhausted, closing")
                await self._close_with(REPLY_TOO_MANY_COMMANDS)
                return
            await method(arg)

        return run

    # -- STARTTLS --------------------------------------------------------------------------

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        """RFC 3207 STARTTLS, refused once TLS is active (STARTTLS earlier, or implicit TLS).

        aiosmtpd would answer 220 and start a TLS handshake inside the TLS session.
        """
        if self._tls_protocol is not None:
            await self.push(REPLY_TLS_ACTIVE)
            return
        try:
            await super().smtp_STARTTLS(arg)
        except TLSSetupException as exc:
            cause = exc.__cause__
            reason = getattr(cause, "verify_message", None) or type(cause).__name__
            log.warning("tls: STARTTLS handshake failed (%s)", reason)
            # asyncio has closed the socket but never tells this protocol (no TLS session
            # reached it): end the session here, or its task, its memory and its connection
            # slot would stay for ever.
            if self.transport is not None:
                self.transport.close()
            self.connection_lost(None)

    # -- addresses -----------------------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser with a fast path for the plain ``<local@domain>`` form.

        The stock path runs the RFC 5322 header parser of the email package (a tenth of a
        millisecond per MAIL/RCPT); anything but the simple form still goes through it.
        """
        if arg:
            m = _SIMPLE_PATH.match(arg)
            if m is not None:
                addr = m.group(1)
                if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
                    return None, None
                return addr, m.group(2)
        try:
            return super()._getaddr(arg)
        except IndexError:
            # The stdlib header parser indexes past the end of a cut address ("<", "<a@b",
            # "<\x00..."): a malformed address (553 5.1.3), not an internal error (found by
            # tests/fuzz, crash-ecb00d25).
            return None, None

    # -- replies -------------------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        """Send one reply line; count errors and close after ``max_errors`` of them."""
        if self._closing:
            return
        if isinstance(status, str):
            # aiosmtpd echoes client text ("502 Could not VRFY <arg>"), where undecodable
            # bytes are surrogates its own encoding refuses (found by tests/fuzz): send "?".
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii", "replace")
        await super().push(status)
        head = status[:9]
        if head[:1] in (b"4", b"5") and not head.startswith(NOT_ERRORS):
            self._errors += 1
            if self._errors >= self.max_errors:
                log.warning("too many errors (%d), closing", self._errors)
                await self._close_with(REPLY_TOO_MANY_ERRORS)

    async def _close_with(self, reply: str) -> None:
        await super().push(reply)
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    async def handle_exception(self, error: Exception) -> str:
        """Log the traceback with the connection id; reply without the exception text."""
        log.error(
            "internal error conn=%s: %s",
            self.conn_id,
            type(error).__name__,
            exc_info=(type(error), error, error.__traceback__),
        )
        return f"451 4.3.0 Internal error (ref {self.conn_id})"

    # -- DATA ------------------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        """RFC 5321 4.1.1.4 DATA with a chunked reader (see the module docstring)."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push(REPLY_START_DATA)
        decoder = await self._read_data()
        if decoder is None:  # connection closed or timed out
            return
        if decoder.too_big:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(REPLY_TOO_BIG)
            return
        if decoder.header_too_big:
            log.info("header section over %d bytes refused", self.header_size_limit)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(REPLY_HEADER_TOO_BIG)
            return
        if decoder.ambiguous and self.reject_ambiguous_dot:
            log.warning("data with a bare CR/LF dot line refused (smuggling attempt?)")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(REPLY_AMBIGUOUS_DOT)
            return
        original_content = decoder.content()
        del decoder
        content: str | bytes
        if self._decode_data:
            if self.enable_SMTPUTF8:
                content = original_content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    content = original_content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    await self.push("500 Error: strict ASCII mode")
                    return
        else:
            content = original_content
        self.envelope.content = content
        self.envelope.original_content = original_content
        status: Any = MISSING
        if "DATA" in self._handle_hooks:
            status = await self._call_handler_hook("DATA")
        elif hasattr(self.event_handler, "process_message"):
            warnings.warn(
                "Use handler.handle_DATA() instead of .process_message()",
                DeprecationWarning,
                stacklevel=1,
            )
            assert self.session is not None
            result = self.event_handler.process_message(
                self.session.peer, self.envelope.mail_from, self.envelope.rcpt_tos, content
            )
            if asyncio.iscoroutine(result):
                result = await result
            status = MISSING if result is None else result
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> DataDecoder | None:
        """Read mail data up to the end marker; ``None`` if the connection went away."""
        reader = self._reader
        decoder = DataDecoder(self.data_size_limit, self.header_size_limit)
        deadline = self.loop.call_later(self.data_timeout, self._data_timeout_cb)
        # StreamReader pauses the socket once it buffers 2 * limit bytes; aiosmtpd's limit is
        # one command line (1001). Raise it for the DATA phase so reads come in large chunks.
        old_limit: int = reader._limit  # type: ignore[attr-defined]
        reader._limit = max(old_limit, self.chunk_size)  # type: ignore[attr-defined]
        try:
            while True:
                chunk = await reader.read(self.chunk_size)
                if not chunk:  # EOF: the client went away in the middle of DATA.
                    return None
                self._reset_timeout()
                rest = decoder.feed(chunk)
                if decoder.done:
                    if rest:
                        # Bytes after the end marker belong to the next command (pipelining):
                        # give them back to the reader, ahead of anything buffered since.
                        reader._buffer[:0] = rest  # type: ignore[attr-defined]
                    return decoder
        finally:
            deadline.cancel()
            reader._limit = old_limit  # type: ignore[attr-defined]

    def _data_timeout_cb(self) -> None:
        log.info("DATA timeout, closing")
        if self.transport is not None:
            self.transport.close()
