"""Serialise IMAP server responses (RFC 3501 7, 9 ``response``).

Values for :func:`encode_value`:

* ``None`` → ``NIL``; ``int`` → number; ``Atom`` → as is;
* ``bytes``/``str`` → a quoted string when every octet is 7-bit, not CR,
  LF or NUL, and the text is short; otherwise a literal (RFC 3501 4.3);
* ``Raw`` → pre-encoded octets (e.g. a cached BODYSTRUCTURE);
* ``list``/``tuple`` → a parenthesised list, elements separated by one space;
* ``Adjacent`` → its elements written back to back, no separator and no parentheses: the
  repetitions RFC 3501 9 writes without ``SP``, ``1*body`` in ``body-type-mpart`` and
  ``1*address`` in the ENVELOPE address lists, e.g. ``[Adjacent(kids), "mixed"]`` →
  ``((...)(...) "mixed")``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from .lexer import MONTHS
from .seqset import format_uid_set
from .utf7 import encode_mutf7

__all__ = [
    "Atom", "Raw", "Adjacent", "Value", "encode_value", "quote", "literal", "astring", "nstring",
    "mailbox", "ResponseCode", "tagged", "untagged", "continuation", "bye", "fetch",
    "format_datetime", "code_appenduid", "code_copyuid",
]

_QUOTED_MAX = 1024  # longer strings go as literals, which clients parse more cheaply


class Atom(str):
    """A string written verbatim (flags, keywords, NIL-free tokens)."""


@dataclass(frozen=True, slots=True)
class Raw:
    """Already-encoded response octets."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Adjacent:
    """Values written one after the other without separator (RFC 3501 9 ``1*body``,
    ``1*address``); each element is normally a list, so the result is ``(...)(...)``."""

    items: tuple[Value, ...]


Value = None | int | str | bytes | Atom | Raw | Adjacent | Sequence["Value"]


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


#: What a quoted string cannot hold (RFC 3501 9 ``QUOTED-CHAR``: 7-bit TEXT-CHAR, no CR/LF).
_NOT_QUOTABLE = re.compile(rb"[\x00\x0a\x0d\x80-\xff]")


def _quotable(data: bytes) -> bool:
    return len(data) <= _QUOTED_MAX and _NOT_QUOTABLE.search(data) is None


def quote(data: str | bytes) -> bytes:
    """Quoted string; raises ValueError if ``data`` needs a literal."""
    raw = _b(data)
    if not _quotable(raw):
        raise ValueError("not quotable")
    return _quoted(raw)


def _quoted(raw: bytes) -> bytes:
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """A synchronising literal ``{n}\\r\\n...`` (``~{n}`` for RFC 3516 literal8)."""
    return (b"~" if binary else b"") + b"{%d}\r\n" % len(data) + data


def string(data: str | bytes) -> bytes:
    """``string``: quoted when possible, else a literal (RFC 3501 4.3).

    A NUL (possible in a raw header value) is allowed neither in a quoted string nor in a
    literal (RFC 3501 9 ``CHAR8``): it is sent as 0x80, as Dovecot does.
    """
    raw = _b(data).replace(b"\x00", b"\x80")
    return _quoted(raw) if _quotable(raw) else literal(raw)


def nstring(data: str | bytes | None) -> bytes:
    """``nstring``: NIL or a string."""
    return b"NIL" if data is None else string(data)


#: What a bare atom cannot hold (RFC 3501 9 ``atom-specials``, and 8-bit octets).
_NOT_ATOM = re.compile(rb'[(){ %*"\\\]\x00-\x1f\x7f-\xff]')


def astring(data: str | bytes) -> bytes:
    """``astring``: a bare atom when safe (never ``NIL``), else a string."""
    raw = _b(data)
    if raw and raw.upper() != b"NIL" and _NOT_ATOM.search(raw) is None:
        return raw
    return string(raw)


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name in modified UTF-7 (RFC 3501 5.1.3) as an astring; in UTF-8 once the
    client enabled UTF8=ACCEPT (RFC 6855 3)."""
    return astring(name if utf8 else encode_mutf7(name))


def encode_value(value: Value) -> bytes:
    """Encode a nested response value (see the module docstring)."""
    if value is None:
        return b"NIL"
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Adjacent):
        return b"".join(encode_value(v) for v in value.items)
    if isinstance(value, Atom):
        return value.encode("ascii")
    if isinstance(value, bool):
        raise TypeError("bool is not an IMAP value")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, str | bytes):
        return string(value)
    return b"(" + b" ".join(encode_value(v) for v in value) + b")"


def format_datetime(when: datetime) -> bytes:
    """``date-time`` for INTERNALDATE, e.g. ``"17-Jul-1996 02:44:25 -0700"``."""
    off = when.utcoffset()
    minutes = int(off.total_seconds() // 60) if off is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (f'"{when.day:2d}-{MONTHS[when.month - 1]}-{when.year:04d} '
            f'{when:%H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"').encode("ascii")


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A ``resp-text-code`` such as ``[TRYCREATE]`` or ``[UIDVALIDITY 3]``."""

    name: str
    args: str | None = None

    def encode(self) -> bytes:
        """The bracketed code."""
        return b"[" + self.name.encode("ascii") + (
            b" " + _b(self.args) if self.args is not None else b"") + b"]"

    # RFC 5530 / RFC 3501 7.1 codes without arguments, as constants.
    NONEXISTENT: ClassVar["ResponseCode"]
    NOPERM: ClassVar["ResponseCode"]
    AUTHENTICATIONFAILED: ClassVar["ResponseCode"]
    TRYCREATE: ClassVar["ResponseCode"]
    ALREADYEXISTS: ClassVar["ResponseCode"]
    CANNOT: ClassVar["ResponseCode"]
    READ_ONLY: ClassVar["ResponseCode"]
    READ_WRITE: ClassVar["ResponseCode"]
    BADCHARSET: ClassVar["ResponseCode"]
    PRIVACYREQUIRED: ClassVar["ResponseCode"]
    LIMIT: ClassVar["ResponseCode"]
    INUSE: ClassVar["ResponseCode"]
    SERVERBUG: ClassVar["ResponseCode"]
    UNAVAILABLE: ClassVar["ResponseCode"]
    CLIENTBUG: ClassVar["ResponseCode"]
    EXPUNGEISSUED: ClassVar["ResponseCode"]
    TOOBIG: ClassVar["ResponseCode"]
    CLOSED: ClassVar["ResponseCode"]
    NOMODSEQ: ClassVar["ResponseCode"]

    @classmethod
    def uidvalidity(cls, n: int) -> ResponseCode:
        """``[UIDVALIDITY n]``."""
        return cls("UIDVALIDITY", str(n))

    @classmethod
    def uidnext(cls, n: int) -> ResponseCode:
        """``[UIDNEXT n]``."""
        return cls("UIDNEXT", str(n))

    @classmethod
    def unseen(cls, n: int) -> ResponseCode:
        """``[UNSEEN n]``."""
        return cls("UNSEEN", str(n))

    @classmethod
    def highestmodseq(cls, n: int) -> ResponseCode:
        """``[HIGHESTMODSEQ n]`` (RFC 7162 3.1.2.1)."""
        return cls("HIGHESTMODSEQ", str(n))

    @classmethod
    def modified(cls, uids: Iterable[int]) -> ResponseCode:
        """``[MODIFIED set]`` (RFC 7162 3.1.3)."""
        return cls("MODIFIED", format_uid_set(uids))

    @classmethod
    def capability(cls, caps: Iterable[str]) -> ResponseCode:
        """``[CAPABILITY IMAP4rev1 ...]``."""
        return cls("CAPABILITY", " ".join(caps))

    @classmethod
    def permanentflags(cls, flags: Iterable[str]) -> ResponseCode:
        """``[PERMANENTFLAGS (...)]``."""
        return cls("PERMANENTFLAGS", "(" + " ".join(flags) + ")")

    @classmethod
    def badcharset(cls, charsets: Iterable[str]) -> ResponseCode:
        """``[BADCHARSET (charsets)]`` (RFC 3501 7.1)."""
        return cls("BADCHARSET", "(" + " ".join(charsets) + ")")


for _name in ("NONEXISTENT", "NOPERM", "AUTHENTICATIONFAILED", "TRYCREATE", "ALREADYEXISTS",
              "CANNOT", "BADCHARSET", "PRIVACYREQUIRED", "LIMIT", "INUSE", "SERVERBUG",
              "UNAVAILABLE", "CLIENTBUG", "EXPUNGEISSUED", "TOOBIG", "CLOSED", "NOMODSEQ"):
    setattr(ResponseCode, _name, ResponseCode(_name))
ResponseCode.READ_ONLY = ResponseCode("READ-ONLY")
ResponseCode.READ_WRITE = ResponseCode("READ-WRITE")


def code_appenduid(uidvalidity: int, uids: Iterable[int]) -> ResponseCode:
    """``[APPENDUID uidvalidity uid-set]`` (RFC 4315 3); in the order of the messages
    (MULTIAPPEND)."""
    return ResponseCode("APPENDUID", f"{uidvalidity} {format_uid_set(uids, keep_order=True)}")


def code_copyuid(uidvalidity: int, src: Sequence[int], dst: Sequence[int]) -> ResponseCode:
    """``[COPYUID uidvalidity src-set dst-set]`` (RFC 4315 3); pairs kept in order."""
    if len(src) != len(dst):
        raise ValueError("COPYUID sets differ in length")
    pairs = sorted(zip(src, dst, strict=True))
    return ResponseCode("COPYUID", f"{uidvalidity} "
                        f"{format_uid_set([p[0] for p in pairs], keep_order=True)} "
                        f"{format_uid_set([p[1] for p in pairs], keep_order=True)}")


def _text(text: str) -> bytes:
    # resp-text must be one line: drop CR/LF so a message can never inject responses.
    return _b(text).replace(b"\r", b" ").replace(b"\n", b" ")


def tagged(tag: str, status: str, text: str, code: ResponseCode | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text\\r\\n``."""
    if status not in ("OK", "NO", "BAD"):
        raise ValueError("status must be OK, NO or BAD")
    mid = code.encode() + b" " if code is not None else b""
    return tag.encode("ascii") + b" " + status.encode() + b" " + mid + _text(text) + b"\r\n"


def untagged(*parts: bytes | str | int, code: ResponseCode | None = None) -> bytes:
    """``* part part ...\\r\\n``; ``str`` parts are written verbatim, ``int`` as numbers.

    With ``code`` the response is a status response: ``* OK [code] text``.
    """
    words = [_b(p) if not isinstance(p, int) else b"%d" % p for p in parts]
    if code is not None:
        words.insert(1, code.encode())
    return b"* " + b" ".join(words) + b"\r\n"


def bye(text: str) -> bytes:
    """``* BYE text``."""
    return b"* BYE " + _text(text) + b"\r\n"


def continuation(text: str | bytes = b"Ready") -> bytes:
    """``+ text\\r\\n`` (literal go-ahead or SASL challenge in base64)."""
    return b"+ " + _text(text) + b"\r\n" if isinstance(text, str) else b"+ " + text + b"\r\n"


def fetch(seq: int, items: Iterable[tuple[str, Value]]) -> bytes:
    """``* seq FETCH (name value ...)``; names from ``FetchAttr.response_name()``."""
    body = b" ".join(name.encode("ascii") + b" " + encode_value(val) for name, val in items)
    return b"* %d FETCH (" % seq + body + b")\r\n"
