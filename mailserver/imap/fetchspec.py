"""FETCH data items (RFC 3501 6.4.5, 9 ``fetch-att``; RFC 3516 BINARY; RFC 7162 MODSEQ)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .lexer import Cursor, ParseError

__all__ = ["Section", "FetchAttr", "parse_fetch_atts", "MACROS"]

_SIMPLE = {
    "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
    "RFC822.TEXT", "BODYSTRUCTURE", "UID", "MODSEQ", "BODY",
}

#: RFC 3501 6.4.5 macros.
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_MAX_PARTS = 32
_ITEM_NAME = re.compile(rb"[A-Za-z0-9.]+")


@dataclass(frozen=True, slots=True)
class Section:
    """A ``section`` spec: ``parts`` (1.2.3) then an optional text specifier.

    ``specifier`` is one of None, ``HEADER``, ``HEADER.FIELDS``,
    ``HEADER.FIELDS.NOT``, ``TEXT``, ``MIME``; ``fields`` holds the
    upper-cased header names for the two HEADER.FIELDS forms.
    """

    parts: tuple[int, ...] = ()
    specifier: str | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        out = ".".join(str(p) for p in self.parts)
        if self.specifier:
            out += ("." if out else "") + self.specifier
            if self.fields:
                out += " (" + " ".join(self.fields) + ")"
        return out


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """One requested item.

    ``name`` is the upper-cased item (``BODY`` for BODY[...] and BODY.PEEK[...],
    ``BINARY``/``BINARY.SIZE`` for RFC 3516).  ``section`` is set for the
    bracketed forms; ``partial`` is ``(origin, length)``.
    """

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = field(default=None)

    @property
    def sets_seen(self) -> bool:
        """Does fetching this set ``\\Seen`` (RFC 3501 6.4.5)?"""
        if self.name in ("RFC822", "RFC822.TEXT"):
            return True
        return self.section is not None and self.name in ("BODY", "BINARY") and not self.peek

    def response_name(self) -> str:
        """The item name used in the FETCH response, e.g. ``BODY[1.MIME]<0>``.

        RFC 3501 7.4.2: the response omits ``.PEEK`` and shows only the origin.
        """
        if self.section is None:
            return self.name
        out = f"{self.name}[{self.section}]"
        if self.partial is not None:
            out += f"<{self.partial[0]}>"
        return out


def parse_fetch_atts(cur: Cursor) -> tuple[FetchAttr, ...]:
    """Parse ``"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"``."""
    atom = cur.peek_atom()
    if atom in MACROS and cur.peek(len(atom) + 1)[-1:] in (b"", b" ", b"\r"):
        cur.atom()
        return tuple(FetchAttr(n) for n in MACROS[atom])
    if cur.try_lit(b"("):
        atts = [_att(cur)]
        while not cur.try_lit(b")"):
            cur.sp()
            atts.append(_att(cur))
        return tuple(atts)
    return (_att(cur),)


def _att(cur: Cursor) -> FetchAttr:
    start = cur.pos
    name = cur.token(_ITEM_NAME, "fetch item").upper()
    if cur.peek() != b"[":
        if name in _SIMPLE or name == "BINARY.SIZE":
            if name == "BINARY.SIZE":
                raise ParseError("BINARY.SIZE needs a section")
            return FetchAttr(name)
        cur.pos = start
        raise ParseError(f"unknown fetch item {name[:20]}")
    if name not in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        raise ParseError(f"unexpected section after {name[:20]}")
    cur.expect(b"[")
    binary = name.startswith("BINARY")
    section = _section(cur, binary)
    cur.expect(b"]")
    partial = None
    if name != "BINARY.SIZE" and cur.try_lit(b"<"):
        origin = cur.number()
        cur.expect(b".", "partial length")
        length = cur.number(nonzero=True)
        cur.expect(b">")
        partial = (origin, length)
    base = "BINARY.SIZE" if name == "BINARY.SIZE" else ("BINARY" if binary else "BODY")
    return FetchAttr(base, section, peek=name.endswith(".PEEK"), partial=partial)


def _section(cur: Cursor, binary: bool) -> Section:
    parts: list[int] = []
    while cur.peek().isdigit():
        parts.append(cur.number(nonzero=True))
        if len(parts) > _MAX_PARTS:
            raise ParseError("section too deep")
        if not cur.try_lit(b"."):
            return Section(tuple(parts))
    if cur.peek() == b"]":
        if parts:
            raise ParseError("invalid section")
        return Section()
    if binary:  # RFC 3516: section-binary = "[" [section-part] "]"
        raise ParseError("BINARY takes only part numbers")
    spec = cur.atom("section text").upper()
    if spec == "MIME":
        if not parts:
            raise ParseError("MIME needs a part number")  # RFC 3501 9 section-text
        return Section(tuple(parts), "MIME")
    if spec in ("HEADER", "TEXT"):
        return Section(tuple(parts), spec)
    if spec in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        cur.sp()
        cur.expect(b"(", "header list")
        names = [cur.astring("header name").decode("ascii", "replace").upper()]
        while not cur.try_lit(b")"):
            cur.sp()
            names.append(cur.astring("header name").decode("ascii", "replace").upper())
        return Section(tuple(parts), spec, tuple(names))
    raise ParseError("invalid section text")
