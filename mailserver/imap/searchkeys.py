"""SEARCH criteria: the key tree and its parser (RFC 3501 6.4.4, 9 ``search-key``).

Values of string criteria stay as the client's bytes; they are decoded with
the command's CHARSET when the search is compiled (:mod:`.search`), so the
parser does not need to know which charsets the server supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from .lexer import Cursor, ParseError
from .seqset import SeqSet

__all__ = [
    "SearchKey", "SearchAll", "SearchFlag", "SearchDate", "SearchHeader", "SearchText",
    "SearchSize", "SearchSet", "SearchNot", "SearchOr", "SearchAnd", "SearchModSeq",
    "parse_search_program",
]

_MAX_DEPTH = 32  # nested NOT/OR/() beyond this is refused; keeps recursion bounded


@dataclass(frozen=True, slots=True)
class SearchAll:
    """ALL."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag test: ANSWERED, UNSEEN, KEYWORD x, ... (``present`` False for UN*)."""

    flag: str
    present: bool


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    field: Literal["internal", "sent"]
    op: Literal["before", "on", "since"]
    date: date


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """Substring in a header field; ``field`` is lower-case (FROM, SUBJECT, HEADER x y)."""

    field: str
    value: bytes


@dataclass(frozen=True, slots=True)
class SearchText:
    """BODY (``body_only``) or TEXT (header and body)."""

    body_only: bool
    value: bytes


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER n (``larger``) or SMALLER n, on RFC822.SIZE."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchSet:
    """A sequence set, or ``UID`` sequence set."""

    seqset: SeqSet
    uid: bool


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """MODSEQ [entry-name entry-type] n (RFC 7162 3.1.5): modseq >= n."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    """NOT key."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    """OR key1 key2."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """Keys that must all match: several top-level keys or a parenthesised list."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll | SearchFlag | SearchDate | SearchHeader | SearchText | SearchSize | SearchSet
    | SearchModSeq | SearchNot | SearchOr | SearchAnd
)

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True), "FLAGGED": ("\\Flagged", True),
    "RECENT": ("\\Recent", True), "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False), "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False), "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False), "OLD": ("\\Recent", False),
}
_DATE_KEYS: dict[str, tuple[Literal["internal", "sent"], Literal["before", "on", "since"]]] = {
    "BEFORE": ("internal", "before"), "ON": ("internal", "on"), "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"), "SENTON": ("sent", "on"), "SENTSINCE": ("sent", "since"),
}
_HEADER_KEYS = {"BCC": "bcc", "CC": "cc", "FROM": "from", "SUBJECT": "subject", "TO": "to"}
_ARG_KEYS = frozenset({*_DATE_KEYS, *_HEADER_KEYS, "KEYWORD", "UNKEYWORD", "HEADER", "BODY",
                       "TEXT", "LARGER", "SMALLER", "UID", "NOT", "OR", "MODSEQ"})


def parse_search_program(cur: Cursor) -> tuple[str | None, SearchKey]:
    """Parse ``[CHARSET astring SP] search-key *(SP search-key)`` to the end.

    Returns:
        ``(charset or None, key)``; several keys are wrapped in :class:`SearchAnd`.
    """
    charset = None
    if cur.peek_atom() == "CHARSET":
        cur.atom()
        cur.sp()
        charset = cur.astring("charset").decode("ascii", "replace")
        cur.sp()
    keys = [_key(cur, 0)]
    while cur.try_sp():
        keys.append(_key(cur, 0))
    cur.end()
    return charset, keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def _key(cur: Cursor, depth: int) -> SearchKey:
    if depth > _MAX_DEPTH:
        raise ParseError("search criteria nested too deeply")
    if cur.try_lit(b"("):
        keys = [_key(cur, depth + 1)]
        while not cur.try_lit(b")"):
            cur.sp()
            keys.append(_key(cur, depth + 1))
        return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))
    c = cur.peek()
    if c.isdigit() or c in (b"*", b"$"):
        return SearchSet(cur.seqset(), uid=False)
    name = cur.atom("search key").upper()
    if name == "ALL":
        return SearchAll()
    if name in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[name]
        return SearchFlag(flag, present)
    if name == "NEW":  # RFC 3501 6.4.4: RECENT UNSEEN
        return SearchAnd((SearchFlag("\\Recent", True), SearchFlag("\\Seen", False)))
    if name not in _ARG_KEYS:
        raise ParseError(f"unknown search key {name[:20]}")
    cur.sp()
    return _key_with_args(cur, name, depth)


def _key_with_args(cur: Cursor, name: str, depth: int) -> SearchKey:
    if name in ("KEYWORD", "UNKEYWORD"):
        return SearchFlag(cur.flag(allow_recent=True), name == "KEYWORD")
    if name in _DATE_KEYS:
        fld, op = _DATE_KEYS[name]
        return SearchDate(fld, op, cur.date().date())
    if name in _HEADER_KEYS:
        return SearchHeader(_HEADER_KEYS[name], cur.astring("search string"))
    if name == "HEADER":
        field = cur.astring("header name").decode("ascii", "replace").lower()
        cur.sp()
        return SearchHeader(field, cur.astring("search string"))
    if name in ("BODY", "TEXT"):
        return SearchText(name == "BODY", cur.astring("search string"))
    if name in ("LARGER", "SMALLER"):
        return SearchSize(name == "LARGER", cur.number())
    if name == "UID":
        return SearchSet(cur.seqset(), uid=True)
    if name == "NOT":
        return SearchNot(_key(cur, depth + 1))
    if name == "OR":
        left = _key(cur, depth + 1)
        cur.sp()
        return SearchOr(left, _key(cur, depth + 1))
    if name == "MODSEQ":
        # RFC 7162 3.1.5: MODSEQ [entry-name SP entry-type-req SP] mod-sequence-valzer
        if cur.peek() == b'"':
            entry = cur.quoted().decode("ascii", "replace")
            cur.sp()
            etype = cur.atom("entry type").lower()
            if etype not in ("priv", "shared", "all"):
                raise ParseError("invalid MODSEQ entry type")
            cur.sp()
            return SearchModSeq(cur.number(bits=63), entry, etype)
        return SearchModSeq(cur.number(bits=63))
    raise ParseError(f"unknown search key {name[:20]}")
