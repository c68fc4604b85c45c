"""Evaluate SEARCH criteria against messages (RFC 3501 6.4.4, RFC 7162 3.1.5).

:func:`compile_search` checks the CHARSET and decodes the search strings
once; the returned :class:`SearchProgram` then tests messages.  A message is
described by a :class:`SearchMessage` whose header and body are callables,
so a server only fetches (and decrypts) what the criteria need: see
``SearchProgram.needs_headers`` / ``needs_body``.

String matching is case-insensitive substring matching (RFC 3501 6.4.4) on
header values decoded from RFC 2047 and on decoded text parts.  Address fields (FROM, TO,
CC, BCC...) are matched as the ENVELOPE shows them, ``Name <user@domain>`` with comments
removed, as Dovecot does: ``<user (comment)@ (comment) domain.org>`` is found by
``FROM user@domain.org``.
"""

from __future__ import annotations

import email
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_to_datetime

from mailserver.headers import decode_encoded_words, raw_fields

from .envelope import parse_addresses
from .rawheaders import RAW_POLICY, header_text
from .searchkeys import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
)

__all__ = ["SearchMessage", "SearchProgram", "BadCharset", "compile_search", "SUPPORTED_CHARSETS",
           "decode_header_value"]

#: Charsets accepted in SEARCH CHARSET (RFC 3501 6.4.4 requires US-ASCII and UTF-8).
SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")


class BadCharset(Exception):
    """Unknown CHARSET: answer ``NO [BADCHARSET (US-ASCII UTF-8)]`` (RFC 3501 7.1)."""

    def __init__(self, charset: str) -> None:
        super().__init__(charset)
        self.supported = SUPPORTED_CHARSETS


@dataclass
class SearchMessage:
    """What the evaluator may look at for one message.

    ``header`` returns the raw header block; ``body`` the raw octets after it.
    Both are called at most once per message and only when needed.
    """

    seq: int
    uid: int
    flags: frozenset[str]
    internaldate: datetime
    size: int
    header: Callable[[], bytes]
    body: Callable[[], bytes]
    modseq: int = 0
    _raw: bytes | None = field(default=None, repr=False)
    _parsed: Message | None = field(default=None, repr=False)
    _text: str | None = field(default=None, repr=False)
    _inner: str = field(default="", repr=False)

    def raw_header(self) -> bytes:
        """The header block's octets (cached)."""
        if self._raw is None:
            self._raw = self.header()
        return self._raw

    def headers(self) -> Message:
        """The parsed header block (cached)."""
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self.raw_header(), policy=RAW_POLICY)
        return self._parsed

    def body_text(self) -> str:
        """Decoded text of the text/* parts, casefolded (cached)."""
        if self._text is None:
            msg = email.message_from_bytes(self.raw_header() + self.body(), policy=compat32)
            texts, inner = [], []
            for part in msg.walk():
                if part is not msg:  # TEXT: a part's header is in the message's body
                    inner += [f"{k}: {decode_header_value(str(v))}" for k, v in part.items()]
                if part.is_multipart() or part.get_content_maintype() != "text":
                    continue
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    charset = part.get_content_charset() or "utf-8"
                    try:
                        texts.append(payload.decode(charset, "replace"))
                    except LookupError:
                        texts.append(payload.decode("utf-8", "replace"))
            self._text = "\n".join(texts).casefold()
            self._inner = "\n".join(inner).casefold()
        return self._text

    def inner_headers(self) -> str:
        """The header fields of every part and enclosed message, casefolded (RFC 3501
        6.4.4 TEXT: they are in the body of the message)."""
        self.body_text()
        return self._inner


def decode_header_value(value: str) -> str:
    """Decode raw 8-bit (RFC 6532) octets and RFC 2047 encoded words; else the raw text."""
    return header_text(value)


Matcher = Callable[[SearchMessage], bool]


@dataclass(frozen=True)
class SearchProgram:
    """A compiled search: call :meth:`matches` per message."""

    matcher: Matcher
    needs_headers: bool
    needs_body: bool

    def matches(self, msg: SearchMessage) -> bool:
        """Does ``msg`` satisfy the criteria?"""
        return self.matcher(msg)


def compile_search(key: SearchKey, charset: str | None, *, max_seq: int,
                   max_uid: int) -> SearchProgram:
    """Compile ``key``; ``max_seq``/``max_uid`` give ``*`` its value.

    Raises:
        BadCharset: if ``charset`` is not supported.
    """
    cs = (charset or "US-ASCII").upper()
    if cs not in SUPPORTED_CHARSETS:
        raise BadCharset(cs)
    needs = {"headers": False, "body": False}

    def text(value: bytes) -> str:
        codec = "ascii" if cs == "US-ASCII" else "utf-8"
        try:
            return value.decode(codec).casefold()
        except UnicodeDecodeError:
            return value.decode("utf-8", "replace").casefold()

    def build(k: SearchKey) -> Matcher:
        if isinstance(k, SearchAll):
            return lambda m: True
        if isinstance(k, SearchFlag):
            flag, present = k.flag.casefold(), k.present
            return lambda m: any(f.casefold() == flag for f in m.flags) == present
        if isinstance(k, SearchSize):
            n = k.size
            return (lambda m: m.size > n) if k.larger else (lambda m: m.size < n)
        if isinstance(k, SearchSet):
            ss, top, uid = k.seqset, (max_uid if k.uid else max_seq), k.uid
            return lambda m: ss.contains(m.uid if uid else m.seq, top)
        if isinstance(k, SearchModSeq):
            n = k.modseq
            return lambda m: m.modseq >= n
        if isinstance(k, SearchNot):
            inner = build(k.key)
            return lambda m: not inner(m)
        if isinstance(k, SearchOr):
            left, right = build(k.left), build(k.right)
            return lambda m: left(m) or right(m)
        if isinstance(k, SearchAnd):
            parts = [build(x) for x in k.keys]
            return lambda m: all(p(m) for p in parts)
        if isinstance(k, SearchDate):
            return _date_matcher(k, needs)
        if isinstance(k, SearchHeader):
            needs["headers"] = True
            name, want = k.field, text(k.value)
            return lambda m: _header_has(m, name, want)
        if isinstance(k, SearchText):
            needs["body"] = True
            want = text(k.value)
            if k.body_only:
                return lambda m: want in m.body_text()
            needs["headers"] = True
            return lambda m: (want in m.body_text() or want in _all_headers(m)
                              or want in m.inner_headers())
        raise TypeError(f"unknown search key {k!r}")

    matcher = build(key)
    return SearchProgram(matcher, needs["headers"], needs["body"])


#: Header fields holding address lists (RFC 5322 3.6.2, 3.6.3).
_ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})


def _header_has(m: SearchMessage, name: str, want: str) -> bool:
    key = name.lower()
    if key in _ADDRESS_FIELDS:
        values = m.headers().get_all(name) or []
        if not want:  # RFC 3501 6.4.4 HEADER: empty string matches any message with the field
            return bool(values)
        return any(want in _addresses_text(str(v)) for v in values)
    # Other fields: the field's unfolded text (RFC 5322 2.2.3), read straight from the header
    # block (a fifth of the cost of parsing it all), encoded words decoded.
    texts = raw_fields(m.raw_header(), frozenset((key,)))[key]
    if not want:
        return bool(texts)
    return any(want in decode_encoded_words(t).casefold() for t in texts)


def _addresses_text(value: str) -> str:
    """An address field as ENVELOPE shows it: ``Name <user@domain>`` per address, casefolded
    (the decoded raw value when it holds no address)."""
    out = []
    for pname, _adl, mailbox, host in parse_addresses(value):
        if host is None:  # group start or end marker
            continue
        addr = f"{mailbox}@{host}" if host else mailbox or ""
        display = decode_header_value(pname) if pname else ""
        out.append(f"{display} <{addr}>" if display else addr)
    return ("\n".join(out) if out else decode_header_value(value)).casefold()


def _all_headers(m: SearchMessage) -> str:
    return "\n".join(f"{k}: {decode_header_value(str(v))}"
                     for k, v in m.headers().items()).casefold()


def _compare(day: date, op: str, target: date) -> bool:
    if op == "before":
        return day < target
    if op == "on":
        return day == target
    return day >= target  # SINCE: "within or later than" (RFC 3501 6.4.4)


def _date_matcher(k: SearchDate, needs: dict[str, bool]) -> Matcher:
    op, target = k.op, k.date
    if k.field == "internal":
        # RFC 3501 6.4.4: "disregarding time and timezone"
        return lambda m: _compare(m.internaldate.date(), op, target)
    needs["headers"] = True

    def sent(m: SearchMessage) -> bool:
        value = m.headers().get("Date")
        if value is None:
            return False
        try:
            when = parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return False
        return _compare(when.date(), op, target)

    return sent
