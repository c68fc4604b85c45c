"""Token readers over one complete IMAP command (RFC 3501 section 9).

The :class:`~mailserver.imap.parser.Receiver` frames a command: its line(s)
with every literal's octets left in place after the ``{n}\\r\\n`` marker.
A :class:`Cursor` then walks that buffer.  Every reader raises
:class:`ParseError` with a short, client-safe message on bad syntax.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .seqset import SeqSet
from .utf7 import decode_mutf7

__all__ = ["Cursor", "ParseError", "InvalidName", "MONTHS"]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# RFC 3501 9: ATOM-CHAR is any CHAR except atom-specials:
#   "(" / ")" / "{" / SP / CTL / list-wildcards ("%" "*") / quoted-specials / "]"
_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\]\x80-\xff]+')
# ASTRING-CHAR = ATOM-CHAR / resp-specials ("]")
_ASTRING_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\x80-\xff]+')
# list-mailbox chars: ATOM-CHAR / list-wildcards / resp-specials
_LIST_CHARS = re.compile(rb'[^(){ \x00-\x1f\x7f"\\\x80-\xff]+')
_LITERAL = re.compile(rb"~?\{([0-9]{1,10})(\+?)\}\r\n")
_NUMBER = re.compile(rb"[0-9]+")
_SEQSET = re.compile(rb"[0-9*:,]+")
_TAG = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\+\x80-\xff]+')
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATETIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)


class ParseError(Exception):
    """Bad command syntax; ``str(exc)`` is safe to send in a BAD response."""


class InvalidName(str):
    """A mailbox argument that is not valid modified UTF-7 (RFC 3501 5.1.3), as sent.

    The syntax is fine (it is an astring), so the command parses and the session answers
    ``NO``: a ``BAD`` would make clients give up on the connection."""


def _month(name: bytes) -> int:
    try:
        return [m.lower() for m in MONTHS].index(name.decode("ascii").lower()) + 1
    except ValueError:
        raise ParseError("invalid month") from None


class Cursor:
    """A read position in one framed command buffer."""

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    # -- low level ---------------------------------------------------------
    def peek(self, n: int = 1) -> bytes:
        """Return the next ``n`` bytes without consuming them."""
        return self.buf[self.pos : self.pos + n]

    def at_end(self) -> bool:
        """True when only the final CRLF (or nothing) remains."""
        return self.buf[self.pos :] in (b"", b"\r\n")

    def end(self) -> None:
        """Require the end of the command."""
        if not self.at_end():
            raise ParseError("unexpected extra arguments")

    def try_lit(self, token: bytes) -> bool:
        """Consume ``token`` (case-insensitive) if it comes next."""
        if self.buf[self.pos : self.pos + len(token)].upper() == token.upper():
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        """Consume ``token`` (case-insensitive) or fail."""
        if not self.try_lit(token):
            raise ParseError(f"expected {what or token.decode()!s}")

    def sp(self) -> None:
        """Consume exactly one space (RFC 3501 9: SP)."""
        self.expect(b" ", "space")

    def try_sp(self) -> bool:
        """Consume a space if present."""
        return self.try_lit(b" ")

    def _match(self, regex: re.Pattern[bytes]) -> bytes | None:
        m = regex.match(self.buf, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group(0)

    def token(self, regex: re.Pattern[bytes], what: str) -> str:
        """Consume a token matching ``regex`` (ASCII) or fail with ``expected <what>``."""
        tok = self._match(regex)
        if tok is None:
            raise ParseError(f"expected {what}")
        return tok.decode("ascii")

    # -- atoms and numbers ---------------------------------------------------
    def tag(self) -> str:
        """Read a command tag (RFC 3501 9: ``tag``)."""
        tok = self._match(_TAG)
        if tok is None:
            raise ParseError("missing or invalid tag")
        return tok.decode("ascii")

    def atom(self, what: str = "atom") -> str:
        """Read an atom; returned as ASCII text."""
        tok = self._match(_ATOM)
        if tok is None:
            raise ParseError(f"expected {what}")
        return tok.decode("ascii")

    def peek_atom(self) -> str | None:
        """Return the upper-cased atom that follows, without consuming it."""
        m = _ATOM.match(self.buf, self.pos)
        return m.group(0).decode("ascii").upper() if m else None

    def number(self, *, nonzero: bool = False, bits: int = 32) -> int:
        """Read ``number`` / ``nz-number`` (RFC 3501 9) or a 63-bit mod-sequence."""
        tok = self._match(_NUMBER)
        if tok is None or len(tok) > 20:
            raise ParseError("expected number")
        n = int(tok)
        if n >= 1 << bits or (nonzero and n == 0):
            raise ParseError("number out of range")
        return n

    def seqset(self) -> SeqSet:
        """Read a ``sequence-set``, or ``$`` (RFC 5182 ``seq-last-command``)."""
        if self.try_lit(b"$"):
            return SeqSet((), saved=True)
        tok = self._match(_SEQSET)
        if tok is None:
            raise ParseError("expected sequence set")
        try:
            return SeqSet.parse(tok)
        except ValueError:
            raise ParseError("invalid sequence set") from None

    # -- strings -------------------------------------------------------------
    def quoted(self) -> bytes:
        """Read a quoted string with ``\\"`` and ``\\\\`` escapes (RFC 3501 9)."""
        self.expect(b'"', "quoted string")
        out = bytearray()
        buf, i = self.buf, self.pos
        while i < len(buf):
            c = buf[i]
            if c == 0x22:
                self.pos = i + 1
                return bytes(out)
            if c == 0x5C:
                if i + 1 < len(buf) and buf[i + 1] in b'"\\':
                    out.append(buf[i + 1])
                    i += 2
                    continue
                raise ParseError("invalid escape in quoted string")
            if c in (0x0D, 0x0A, 0x00):
                break
            out.append(c)
            i += 1
        raise ParseError("unterminated quoted string")

    def literal(self) -> bytes:
        """Read a literal (``{n}`` / ``{n+}`` / ``~{n}``) whose octets follow inline."""
        m = _LITERAL.match(self.buf, self.pos)
        if m is None:
            raise ParseError("expected literal")
        n = int(m.group(1))
        start = m.end()
        if start + n > len(self.buf):
            raise ParseError("truncated literal")
        self.pos = start + n
        return self.buf[start : start + n]

    def string(self) -> bytes:
        """Read ``string`` (quoted or literal)."""
        c = self.peek()
        if c == b'"':
            return self.quoted()
        if c == b"{" or self.peek(2) == b"~{":
            return self.literal()
        raise ParseError("expected string")

    def astring(self, what: str = "astring") -> bytes:
        """Read ``astring`` (atom-ish, quoted or literal)."""
        c = self.peek()
        if c in (b'"', b"{") or self.peek(2) == b"~{":
            return self.string()
        tok = self._match(_ASTRING_ATOM)
        if tok is None:
            raise ParseError(f"expected {what}")
        return tok

    def nstring(self) -> bytes | None:
        """Read ``nstring``: a string or NIL."""
        if self.peek_atom() == "NIL":
            self.pos += 3
            return None
        return self.string()

    def text_astring(self, what: str = "astring") -> str:
        """Read an astring as UTF-8 text (undecodable bytes kept as surrogates)."""
        return self.astring(what).decode("utf-8", "surrogateescape")

    def mailbox(self) -> str:
        """Read a ``mailbox``: INBOX in any case becomes ``INBOX``; mUTF-7 is decoded."""
        return _mailbox_name(self.astring("mailbox name"))

    def list_mailbox(self) -> str:
        """Read a LIST pattern (``list-mailbox``), decoded from modified UTF-7 (or UTF-8)."""
        c = self.peek()
        if c in (b'"', b"{") or self.peek(2) == b"~{":
            raw = self.string()
        else:
            tok = self._match(_LIST_CHARS)
            if tok is None:
                raise ParseError("expected mailbox pattern")
            raw = tok
        # Not mUTF-7: the name as sent (a UTF8=ACCEPT pattern such as "R&D*"), which names
        # no mailbox of a session that did not enable UTF8=ACCEPT.
        return str(_mailbox_name(raw))

    # -- lists, flags, dates ---------------------------------------------------
    def flag(self, *, allow_recent: bool = False) -> str:
        """Read one flag (``\\Seen`` style or keyword atom)."""
        if self.try_lit(b"\\"):
            name = "\\" + self.atom("flag")
            if name.upper() == "\\RECENT" and not allow_recent:
                raise ParseError("\\Recent cannot be set")  # RFC 3501 2.3.2
            return _canonical_flag(name)
        return self.atom("flag")

    def flag_list(self) -> tuple[str, ...]:
        """Read ``flag-list``: ``(flag *(SP flag))`` possibly empty."""
        self.expect(b"(", "flag list")
        flags: list[str] = []
        if not self.try_lit(b")"):
            while True:
                flags.append(self.flag())
                if self.try_lit(b")"):
                    break
                self.sp()
        return tuple(dict.fromkeys(flags))

    def flags_or_list(self) -> tuple[str, ...]:
        """STORE accepts ``flag-list`` or bare ``flag *(SP flag)`` (RFC 3501 9)."""
        if self.peek() == b"(":
            return self.flag_list()
        flags = [self.flag()]
        while self.try_sp():
            flags.append(self.flag())
        return tuple(dict.fromkeys(flags))

    def date(self) -> datetime:
        """Read ``date`` (``1-Feb-1994``, optionally quoted) as midnight UTC."""
        quoted = self.try_lit(b'"')
        m = _DATE.match(self.buf, self.pos)
        if m is None:
            raise ParseError("expected date")
        self.pos = m.end()
        if quoted:
            self.expect(b'"', "closing quote")
        try:
            return datetime(int(m.group(3)), _month(m.group(2)), int(m.group(1)),
                            tzinfo=timezone.utc)
        except ValueError:
            raise ParseError("invalid date") from None

    def date_time(self) -> datetime:
        """Read ``date-time`` (RFC 3501 9), e.g. ``"17-Jul-1996 02:44:25 -0700"``."""
        m = _DATETIME.match(self.buf, self.pos)
        if m is None:
            raise ParseError("expected date-time")
        self.pos = m.end()
        g = m.groups()
        try:
            offset = timedelta(hours=int(g[7]), minutes=int(g[8]))
            tz = timezone(-offset if g[6] == b"-" else offset)
            return datetime(
                int(g[2]), _month(g[1]), int(g[0].strip()), int(g[3]), int(g[4]), int(g[5]),
                tzinfo=tz
            )
        except ValueError:
            raise ParseError("invalid date-time") from None


_SYSTEM_FLAGS = {f.upper(): f for f in
                 ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")}


def _canonical_flag(name: str) -> str:
    """System flags are case-insensitive; give them their RFC spelling."""
    return _SYSTEM_FLAGS.get(name.upper(), name)


def _mailbox_name(raw: bytes) -> str:
    """mUTF-7 (RFC 3501 5.1.3), or UTF-8 when the name holds 8-bit octets (RFC 6855 3: a
    UTF8=ACCEPT client sends names in UTF-8; mUTF-7 is 7-bit, so no name is both)."""
    if any(b >= 0x80 for b in raw):
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            return InvalidName(raw.decode("utf-8", "replace"))
        return "INBOX" if name.upper() == "INBOX" else name
    try:
        name = decode_mutf7(raw)
    except ValueError:
        return InvalidName(raw.decode("ascii", "replace"))
    # RFC 3501 5.1: INBOX is case-insensitive.
    if name.upper() == "INBOX":
        return "INBOX"
    return name
