"""Sans-I/O IMAP command receiver (RFC 3501 2.2, 4.3, 7.5; RFC 7888 LITERAL+).

Theory of operation
-------------------
The driver feeds raw bytes; :meth:`Receiver.feed` returns events:

* a :class:`~mailserver.imap.commands.Command` subclass, fully parsed;
* :class:`NeedLiteral` when a line ends in a synchronising literal ``{n}``:
  the driver answers ``+ Ready`` (RFC 3501 7.5) and keeps feeding;
* :class:`Invalid` for bad syntax or limits; the driver answers
  ``tag BAD text`` (or ``* BAD`` when ``tag`` is None);
* :class:`IdleDone` / :class:`ContinuationLine` in the special modes below.

Framing: a command is a line; if the line ends in ``{n}``, ``{n+}`` or
``~{n}`` the next ``n`` octets are literal data and the command continues
with another line.  The framed command (literals inline) is then parsed by
the per-verb classes in :mod:`.commands` / :mod:`.commands_selected`.

Limits (constructor arguments) keep memory bounded whatever the peer sends:

* a line longer than ``max_line`` → ``Invalid``; the rest of the line is
  discarded without buffering (a literal marker at its end is still honoured
  so the literal's octets are not taken for commands);
* a literal above ``max_literal`` (or a command above ``max_command``) →
  ``Invalid``.  Synchronising: no ``+`` is sent, so the client does not send
  the octets (RFC 3501 7.5) and we read the next line as a new command.
  Non-synchronising (RFC 7888 4): the octets are already on their way, so
  they and the rest of that command are counted and dropped.

Mode changes: after a command that changes how the next line is read
(IDLE, AUTHENTICATE without initial response, STARTTLS) the receiver
*pauses*: later bytes are buffered (at most ``max_line``) until the driver
calls :meth:`~Receiver.start_idle`, :meth:`~Receiver.expect_continuation`,
:meth:`~Receiver.resume`, or :meth:`~Receiver.discard_buffered` (STARTTLS:
bytes pipelined before the TLS handshake must be dropped, CVE-2011-0411).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import commands as c
from . import commands_selected as s
from .lexer import Cursor, ParseError

__all__ = [
    "Receiver", "NeedLiteral", "Invalid", "IdleDone", "ContinuationLine", "Event",
    "parse_command", "VERBS",
]


@dataclass(frozen=True, slots=True)
class NeedLiteral:
    """The client waits for ``+`` before sending ``size`` literal octets."""

    size: int
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """A command that could not be accepted; answer ``tag BAD text``."""

    tag: str | None
    text: str


@dataclass(frozen=True, slots=True)
class IdleDone:
    """``DONE`` ended the IDLE started with ``tag`` (RFC 2177)."""

    tag: str


@dataclass(frozen=True, slots=True)
class ContinuationLine:
    """A line sent in answer to a ``+`` challenge (RFC 3501 6.2.2), without CRLF."""

    data: bytes

    @property
    def cancelled(self) -> bool:
        """``*`` cancels an AUTHENTICATE exchange (RFC 3501 6.2.2)."""
        return self.data.strip() == b"*"


Event = c.Command | NeedLiteral | Invalid | IdleDone | ContinuationLine

VERBS: dict[str, Callable[[str, Cursor], c.Command]] = {
    cls.verb: cls.parse
    for cls in (
        c.Capability, c.Noop, c.Logout, c.StartTLS, c.Authenticate, c.Login, c.Select,
        c.Examine, c.Create, c.Delete, c.Rename, c.Subscribe, c.Unsubscribe, c.List, c.Lsub,
        c.Status, c.Append, c.Namespace, c.Id, c.Enable, c.Idle, c.Compress, s.Check, s.Close,
        s.Unselect, s.Expunge, s.Search, s.Sort, s.Thread, s.Fetch, s.Store, s.Copy, s.Move,
        s.CancelUpdate,
    )
}
VERBS["UID"] = s.parse_uid

_MARKER = re.compile(rb"~?\{([0-9]{1,10})(\+?)\}\r?\n\Z")
_TAG = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\+\x80-\xff]+')
_VERB = re.compile(rb"[A-Za-z]+")
_TAIL = 24  # enough to see a literal marker at the end of a discarded line


def parse_command(buf: bytes) -> c.Command | Invalid:
    """Parse one framed command (its line(s) with literal octets inline)."""
    cur = Cursor(buf)
    tag = _tag_of(buf)
    if tag is None:
        return Invalid(None, "missing or invalid tag")
    cur.pos = len(tag.encode())
    verb = "command"
    try:
        cur.sp()
        verb = cur.token(_VERB, "command").upper()
        handler = VERBS.get(verb)
        if handler is None:
            return Invalid(tag, "unknown command")
        if cur.peek() not in (b" ", b"\r", b""):
            return Invalid(tag, "unknown command")
        return handler(tag, cur)
    except ParseError as exc:
        return Invalid(tag, f"{verb}: {exc}")


def _tag_of(buf: bytes | bytearray) -> str | None:
    m = _TAG.match(buf)
    if m is None or (len(buf) > m.end() and buf[m.end()] not in b" \r\n"):
        return None
    return m.group(0).decode("ascii")


class Receiver:
    """Frames and parses client input (see the module docstring).

    Args:
        max_line: longest accepted line, CRLF included.
        max_literal: largest accepted literal.
        max_command: largest framed command (lines plus literals); defaults
            to ``max_literal + 4 * max_line``.
    """

    def __init__(self, max_line: int = 8192, max_literal: int = 50 * 1024 * 1024,
                 max_command: int | None = None) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command if max_command is not None else max_literal + 4 * max_line
        self._buf = bytearray()      # unframed input
        self._cmd = bytearray()      # the command being framed
        self._need = 0               # literal octets still to copy into _cmd
        self._skip = 0               # literal octets still to drop
        self._drop_line = False      # dropping the rest of an over-long line
        self._drop_cmd = False       # dropping the rest of a refused command
        self._tail = b""             # last bytes of a dropped line
        self._mode = "command"       # "command" | "idle" | "continuation"
        self._idle_tag = ""
        self._paused = False

    # -- driver API -------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """True after IDLE / AUTHENTICATE / STARTTLS until the driver says how to go on."""
        return self._paused

    @property
    def buffered(self) -> int:
        """Octets held (for tests and metrics)."""
        return len(self._buf) + len(self._cmd)

    def start_idle(self, tag: str) -> list[Event]:
        """Accept IDLE: the next line must be ``DONE`` (RFC 2177 3)."""
        self._mode, self._idle_tag, self._paused = "idle", tag, False
        return self.feed(b"")

    def expect_continuation(self) -> list[Event]:
        """After sending a ``+`` challenge: the next line is a :class:`ContinuationLine`."""
        self._mode, self._paused = "continuation", False
        return self.feed(b"")

    def resume(self) -> list[Event]:
        """Go back to reading commands (e.g. IDLE refused, AUTHENTICATE over)."""
        self._mode, self._paused = "command", False
        return self.feed(b"")

    def discard_buffered(self) -> int:
        """Drop unparsed input and resume; returns how many octets were dropped.

        Call it when TLS starts: anything the client sent after STARTTLS in
        clear text must not be executed (RFC 3501 6.2.1, CVE-2011-0411).
        """
        dropped = len(self._buf)
        self._buf.clear()
        self._mode, self._paused = "command", False
        return dropped

    def take_buffered(self) -> bytes:
        """Return and drop unparsed input, and resume: after COMPRESS (RFC 4978 3) what
        follows the command is compressed and must be inflated before it is fed again."""
        data = bytes(self._buf)
        self._buf.clear()
        self._mode, self._paused = "command", False
        return data

    # -- framing ------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events it completes. Never raises."""
        self._buf += data
        out: list[Event] = []
        if self._paused:
            if len(self._buf) > self.max_line:
                self._buf.clear()
                out.append(Invalid(None, "too much data sent while waiting for the server"))
            return out
        while self._buf and not self._paused:
            if self._need or self._skip:
                self._take_literal()
                continue
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self._drop_line:
                    self._tail = (self._tail + bytes(self._buf))[-_TAIL:]
                    self._buf.clear()
                elif len(self._buf) > self.max_line:
                    self._refuse_line(out, bytes(self._buf))
                    self._tail = bytes(self._buf[-_TAIL:])
                    self._buf.clear()
                    self._drop_line = True
                break
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._drop_line:
                self._drop_line = False
                line = (self._tail + line)[-_TAIL:]
                self._tail = b""
                self._after_dropped_line(line)
            elif len(line) > self.max_line:
                self._refuse_line(out, line)
                self._after_dropped_line(line[-_TAIL:])
            else:
                self._line(line, out)
        return out

    def _take_literal(self) -> None:
        if self._need:
            n = min(self._need, len(self._buf))
            self._cmd += self._buf[:n]
            self._need -= n
        else:
            n = min(self._skip, len(self._buf))
            self._skip -= n
        del self._buf[:n]

    def _refuse_line(self, out: list[Event], line: bytes) -> None:
        tag = _tag_of(self._cmd or line)
        if self._mode == "idle":
            tag = self._idle_tag
        if not self._drop_cmd:
            out.append(Invalid(tag, "line too long"))
        self._cmd.clear()
        self._mode = "command"

    def _after_dropped_line(self, tail: bytes) -> None:
        """The over-long line ended; honour a non-synchronising literal at its end."""
        m = _MARKER.search(tail)
        if m is not None and (m.group(2) or self._drop_cmd):
            self._skip = int(m.group(1))
            self._drop_cmd = True
        else:
            self._drop_cmd = False

    def _line(self, line: bytes, out: list[Event]) -> None:
        if self._mode == "idle":
            self._mode = "command"
            if line.rstrip(b"\r\n").upper() == b"DONE":
                out.append(IdleDone(self._idle_tag))
            else:
                out.append(Invalid(self._idle_tag, "expected DONE"))
            return
        if self._mode == "continuation":
            self._mode = "command"
            self._paused = True
            out.append(ContinuationLine(line.rstrip(b"\r\n")))
            return
        if not self._cmd and not self._drop_cmd and line.strip(b"\r\n") == b"":
            return  # tolerate empty lines between commands
        line = line.rstrip(b"\r\n") + b"\r\n"
        m = _MARKER.search(line)
        if self._drop_cmd:
            if m is not None:
                self._skip = int(m.group(1))
            else:
                self._drop_cmd = False
            return
        self._cmd += line
        if m is None:
            framed = bytes(self._cmd)
            self._cmd.clear()
            cmd = parse_command(framed)
            out.append(cmd)
            self._maybe_pause(cmd)
            return
        size, sync = int(m.group(1)), not m.group(2)
        tag = _tag_of(self._cmd)
        if size > self.max_literal or len(self._cmd) + size > self.max_command:
            out.append(Invalid(tag, "literal too large"))
            self._cmd.clear()
            if not sync:
                self._skip, self._drop_cmd = size, True
            return
        self._need = size
        if sync:
            out.append(NeedLiteral(size, tag))

    def _maybe_pause(self, cmd: c.Command | Invalid) -> None:
        if isinstance(cmd, c.Idle | c.StartTLS | c.Compress) or (
            isinstance(cmd, c.Authenticate) and cmd.initial_response is None
        ):
            self._paused = True
