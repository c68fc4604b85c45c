"""Selected-state commands (RFC 3501 6.4) and their UID forms, plus MOVE,
UNSELECT, UID EXPUNGE and the CONDSTORE modifiers.

Every class has ``uid: bool``: True when the command came as ``UID <verb>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from .commands import Command
from .fetchspec import FetchAttr, parse_fetch_atts
from .lexer import Cursor, ParseError
from .searchkeys import SearchKey, parse_search_program
from .seqset import SeqSet

__all__ = ["Check", "Close", "Unselect", "Expunge", "Search", "Sort", "Thread", "Fetch", "Store",
           "Copy", "Move", "CancelUpdate", "RETURN_OPTS", "SORT_KEY_NAMES", "THREAD_ALGORITHMS",
           "parse_uid"]


@dataclass(frozen=True)
class Check(Command):
    """CHECK (RFC 3501 6.4.1)."""

    verb: ClassVar[str] = "CHECK"


@dataclass(frozen=True)
class Close(Command):
    """CLOSE (RFC 3501 6.4.2)."""

    verb: ClassVar[str] = "CLOSE"


@dataclass(frozen=True)
class Unselect(Command):
    """UNSELECT (RFC 3691)."""

    verb: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True)
class Expunge(Command):
    """EXPUNGE (RFC 3501 6.4.3) or UID EXPUNGE set (RFC 4315 2.1)."""

    verb: ClassVar[str] = "EXPUNGE"
    uid_set: SeqSet | None = None
    uid: bool = False

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Expunge:
        cur.end()
        return cls(tag)

    @classmethod
    def parse_uid(cls, tag: str, cur: Cursor) -> Expunge:
        """Parse ``UID EXPUNGE sequence-set``."""
        cur.sp()
        uids = cur.seqset()
        cur.end()
        return cls(tag, uids, uid=True)


#: RFC 4731 3.1, RFC 5182 2.1 and RFC 5267 4 (CONTEXT, UPDATE, PARTIAL) search-return-opt.
RETURN_OPTS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE", "CONTEXT", "UPDATE", "PARTIAL"})
#: RFC 5267 3, 4.1: SORT RETURN options (SAVE is SEARCH's, RFC 5182).
ESORT_OPTS = RETURN_OPTS - {"SAVE"}
#: RFC 5256 3 sort-key and RFC 5957 2.
SORT_KEY_NAMES = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO",
                            "DISPLAYFROM", "DISPLAYTO"})
THREAD_ALGORITHMS = frozenset({"ORDEREDSUBJECT", "REFERENCES"})

#: A PARTIAL range as the client wrote it: both ends positive (RFC 5267 4.4, first result
#: is 1) or both negative (RFC 9394 3.1, -1 is the last result).
PartialRange = tuple[int, int]


def _partial_range(cur: Cursor) -> PartialRange:
    """``partial-range`` (RFC 5267 4.4, RFC 9394 3.1): ``1:100`` or ``-1:-100``."""
    negative = cur.try_lit(b"-")
    first = cur.number(nonzero=True)
    cur.expect(b":", "partial range")
    if cur.try_lit(b"-") != negative:
        raise ParseError("both ends of a PARTIAL range have the same sign")
    last = cur.number(nonzero=True)
    return (-first, -last) if negative else (first, last)


def _return_opts(cur: Cursor, allowed: frozenset[str] = RETURN_OPTS
                 ) -> tuple[tuple[str, ...], PartialRange | None]:
    """``RETURN (opt...)``; ``RETURN ()`` means ``RETURN (ALL)`` (RFC 4731 3.1).  Returns the
    options and the PARTIAL range, if any."""
    cur.expect(b"RETURN (", "RETURN options")
    opts: list[str] = []
    partial: PartialRange | None = None
    while not cur.try_lit(b")"):
        if opts:
            cur.sp()
        opt = cur.atom("search return option").upper()
        if opt not in allowed:
            raise ParseError("unknown search return option")
        if opt == "PARTIAL":
            if partial is not None:
                raise ParseError("one PARTIAL only")
            cur.sp()
            partial = _partial_range(cur)
        opts.append(opt)
    if partial is not None and "ALL" in opts:  # RFC 5267 4.4
        raise ParseError("PARTIAL and ALL cannot be used together")
    return tuple(dict.fromkeys(opts)) or ("ALL",), partial


@dataclass(frozen=True)
class Search(Command):
    """SEARCH [RETURN (opts)] [CHARSET x] keys (RFC 3501 6.4.4, RFC 4731, RFC 5182).

    ``key`` holds the criteria with raw byte strings; compile it with
    :func:`mailserver.imap.search.compile_search`, which checks ``charset``.  ``returns``
    is None for a plain SEARCH (answered ``* SEARCH``), else the ESEARCH options.
    """

    verb: ClassVar[str] = "SEARCH"
    charset: str | None = None
    key: SearchKey | None = None
    uid: bool = False
    returns: tuple[str, ...] | None = None
    partial: PartialRange | None = None

    @classmethod
    def parse(cls, tag: str, cur: Cursor, uid: bool = False) -> Search:
        cur.sp()
        returns = partial = None
        if cur.peek_atom() == "RETURN":
            returns, partial = _return_opts(cur)
            cur.sp()
        charset, key = parse_search_program(cur)
        return cls(tag, charset, key, uid, returns, partial)


@dataclass(frozen=True)
class Sort(Command):
    """SORT [RETURN (opts)] (criteria) charset keys (RFC 5256 3, RFC 5957, RFC 5267 3 ESORT);
    criteria are (key, reverse); ``returns`` is None for a plain SORT."""

    verb: ClassVar[str] = "SORT"
    criteria: tuple[tuple[str, bool], ...] = ()
    charset: str | None = None
    key: SearchKey | None = None
    uid: bool = False
    returns: tuple[str, ...] | None = None
    partial: PartialRange | None = None

    @classmethod
    def parse(cls, tag: str, cur: Cursor, uid: bool = False) -> Sort:
        cur.sp()
        returns = partial = None
        if cur.peek_atom() == "RETURN":
            returns, partial = _return_opts(cur, ESORT_OPTS)
            cur.sp()
        cur.expect(b"(", "sort criteria")
        criteria: list[tuple[str, bool]] = []
        while not cur.try_lit(b")"):
            if criteria:
                cur.sp()
            name = cur.atom("sort key").upper()
            reverse = name == "REVERSE"
            if reverse:
                cur.sp()
                name = cur.atom("sort key").upper()
            if name not in SORT_KEY_NAMES:
                raise ParseError("unknown sort key")
            criteria.append((name, reverse))
        if not criteria:
            raise ParseError("SORT needs at least one sort key")
        cur.sp()
        charset = cur.astring("charset").decode("ascii", "replace")
        cur.sp()
        _, key = parse_search_program(cur)
        return cls(tag, tuple(criteria), charset, key, uid, returns, partial)


@dataclass(frozen=True)
class Thread(Command):
    """THREAD algorithm charset keys (RFC 5256 4)."""

    verb: ClassVar[str] = "THREAD"
    algorithm: str = ""
    charset: str | None = None
    key: SearchKey | None = None
    uid: bool = False

    @classmethod
    def parse(cls, tag: str, cur: Cursor, uid: bool = False) -> Thread:
        cur.sp()
        algorithm = cur.atom("thread algorithm").upper()
        if algorithm not in THREAD_ALGORITHMS:
            raise ParseError("unknown thread algorithm")
        cur.sp()
        charset = cur.astring("charset").decode("ascii", "replace")
        cur.sp()
        _, key = parse_search_program(cur)
        return cls(tag, algorithm, charset, key, uid)


@dataclass(frozen=True)
class Fetch(Command):
    """FETCH set items [(CHANGEDSINCE n)] (RFC 3501 6.4.5, RFC 7162 3.1.4).

    For UID FETCH the UID item is added if missing (RFC 3501 6.4.8).
    """

    verb: ClassVar[str] = "FETCH"
    seqset: SeqSet = SeqSet(())
    items: tuple[FetchAttr, ...] = ()
    changedsince: int | None = None
    uid: bool = False
    vanished: bool = False  # RFC 7162 3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED)

    @classmethod
    def parse(cls, tag: str, cur: Cursor, uid: bool = False) -> Fetch:
        cur.sp()
        seqset = cur.seqset()
        cur.sp()
        items = parse_fetch_atts(cur)
        changedsince = None
        vanished = False
        if cur.try_sp():
            cur.expect(b"(", "fetch modifiers")
            while not cur.try_lit(b")"):
                name = cur.atom("fetch modifier").upper()
                if name == "VANISHED":
                    vanished = True
                elif name == "CHANGEDSINCE":
                    cur.sp()
                    changedsince = cur.number(bits=63)
                else:
                    raise ParseError("unknown fetch modifier")
                if cur.peek() != b")":
                    cur.sp()
        cur.end()
        if vanished and (not uid or changedsince is None):
            # RFC 7162 3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
            raise ParseError("VANISHED needs UID FETCH and CHANGEDSINCE")
        names = {i.name for i in items}
        if uid and "UID" not in names:
            items = (FetchAttr("UID"), *items)
        if changedsince is not None and "MODSEQ" not in names:
            # RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ in the response.
            items = (*items, FetchAttr("MODSEQ"))
        return cls(tag, seqset, items, changedsince, uid, vanished)


@dataclass(frozen=True)
class Store(Command):
    """STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags (RFC 3501 6.4.6, RFC 7162 3.1.3).

    ``mode`` is ``"replace"``, ``"add"`` or ``"remove"``.
    """

    verb: ClassVar[str] = "STORE"
    seqset: SeqSet = SeqSet(())
    mode: Literal["replace", "add", "remove"] = "replace"
    silent: bool = False
    flags: tuple[str, ...] = ()
    unchangedsince: int | None = None
    uid: bool = False

    @classmethod
    def parse(cls, tag: str, cur: Cursor, uid: bool = False) -> Store:
        cur.sp()
        seqset = cur.seqset()
        cur.sp()
        unchangedsince = None
        if cur.try_lit(b"("):
            while not cur.try_lit(b")"):
                if cur.atom("store modifier").upper() != "UNCHANGEDSINCE":
                    raise ParseError("unknown store modifier")
                cur.sp()
                unchangedsince = cur.number(bits=63)
                if cur.peek() != b")":
                    cur.sp()
            cur.sp()
        mode: Literal["replace", "add", "remove"] = "replace"
        if cur.try_lit(b"+"):
            mode = "add"
        elif cur.try_lit(b"-"):
            mode = "remove"
        item = cur.atom("FLAGS").upper()
        if item not in ("FLAGS", "FLAGS.SILENT"):
            raise ParseError("expected FLAGS or FLAGS.SILENT")
        cur.sp()
        flags = cur.flags_or_list()
        cur.end()
        return cls(tag, seqset, mode, item.endswith(".SILENT"), flags, unchangedsince, uid)


@dataclass(frozen=True)
class Copy(Command):
    """COPY set mailbox (RFC 3501 6.4.7)."""

    verb: ClassVar[str] = "COPY"
    seqset: SeqSet = SeqSet(())
    mailbox: str = ""
    uid: bool = False

    @classmethod
    def parse(cls, tag: str, cur: Cursor, uid: bool = False) -> Copy:
        cur.sp()
        seqset = cur.seqset()
        cur.sp()
        mailbox = cur.mailbox()
        cur.end()
        return cls(tag, seqset, mailbox, uid)


@dataclass(frozen=True)
class Move(Copy):
    """MOVE set mailbox (RFC 6851)."""

    verb: ClassVar[str] = "MOVE"


@dataclass(frozen=True)
class CancelUpdate(Command):
    """CANCELUPDATE "tag"... (RFC 5267 4.3.5): stop the updates of those searches."""

    verb: ClassVar[str] = "CANCELUPDATE"
    tags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> CancelUpdate:
        tags: list[str] = []
        while cur.try_sp():
            tags.append(cur.quoted().decode("ascii", "replace"))
        cur.end()
        if not tags:
            raise ParseError("CANCELUPDATE needs at least one quoted tag")
        return cls(tag, tuple(tags))


_UID_VERBS: dict[str, Callable[..., Command]] = {
    "FETCH": Fetch.parse, "SEARCH": Search.parse, "STORE": Store.parse, "COPY": Copy.parse,
    "MOVE": Move.parse, "SORT": Sort.parse, "THREAD": Thread.parse}


def parse_uid(tag: str, cur: Cursor) -> Command:
    """Parse ``UID (FETCH|SEARCH|STORE|COPY|MOVE|EXPUNGE|SORT|THREAD) ...`` (RFC 3501 6.4.8,
    RFC 5256)."""
    cur.sp()
    sub = cur.atom("UID command").upper()
    if sub == "EXPUNGE":
        return Expunge.parse_uid(tag, cur)
    parse = _UID_VERBS.get(sub)
    if parse is None:
        raise ParseError("unknown UID command")
    return parse(tag, cur, uid=True)
