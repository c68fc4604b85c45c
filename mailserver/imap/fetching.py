"""Build FETCH responses from store rows (RFC 3501 6.4.5, 7.4.2; RFC 7162 3.1.4).

Theory of operation
-------------------
:class:`FetchPlan` looks at the requested items once and says what each message needs:
nothing beyond its row (FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ), the cached summary
(ENVELOPE, BODY, BODYSTRUCTURE, header-only sections) or the decrypted octets (any other
section, RFC822, RFC822.TEXT, BINARY and BINARY.SIZE, decoded by :mod:`.binary`).
:func:`fetch_items` then encodes one message's response items.  No I/O here: the caller
loads what the plan asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import encoder as enc
from .binary import binary_literal, binary_section
from .fetchspec import FetchAttr, Section
from .mailbox import format_flags
from .message import MessageSummary, apply_partial, fetch_section, header_fields

__all__ = ["FetchPlan", "fetch_items", "flags_line_maker", "Unsupported"]

_ROW_ONLY = frozenset({"UID", "FLAGS", "MODSEQ"})

FlagsLine = Callable[[int, int, str, bool, int], bytes]
"""``(seq, uid, flags, recent, modseq) -> b"* seq FETCH (...)\\r\\n"``."""


class Unsupported(Exception):
    """A FETCH item the server does not implement (answered BAD)."""


def _whole(a: FetchAttr) -> bool:
    """``BODY[]`` / ``BODY.PEEK[]``: the whole message (RFC 3501 6.4.5)."""
    s = a.section
    return a.name == "BODY" and s is not None and not s.parts and s.specifier is None


def _header_only(a: FetchAttr) -> bool:
    if a.name == "RFC822.HEADER":
        return True
    s = a.section
    return (a.name == "BODY" and s is not None and not s.parts
            and s.specifier in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"))


@dataclass(frozen=True)
class FetchPlan:
    """What a FETCH item list needs from the store."""

    items: tuple[FetchAttr, ...]
    needs_meta: bool
    needs_raw: bool
    sets_seen: bool

    @classmethod
    def of(cls, items: tuple[FetchAttr, ...]) -> FetchPlan:
        """Analyse ``items``.

        Raises:
            Unsupported: for items the server does not implement (none today).
        """
        meta = raw = False
        for a in items:
            if a.name in ("BINARY", "BINARY.SIZE"):  # RFC 3516: the part decoded
                meta = raw = True
            elif a.name in ("ENVELOPE", "BODYSTRUCTURE") or (
                    a.name == "BODY" and a.section is None):
                meta = True
            elif _header_only(a):
                meta = True
            elif a.name == "RFC822" or _whole(a):
                raw = True  # the octets as stored: no summary to unseal and parse
            elif a.name == "RFC822.TEXT" or a.section is not None:
                meta = raw = True
        return cls(items, meta, raw, any(a.sets_seen for a in items))


def fetch_items(plan: FetchPlan, *, uid: int, flags: str, recent: bool, internaldate: object,
                size: int, modseq: int, summary: object | None, header: bytes | None,
                raw: bytes | None, add_flags: bool, add_modseq: bool
                ) -> list[tuple[str, enc.Value]]:
    """The ``(name, value)`` pairs of one message's FETCH response.

    ``summary`` is a :class:`~mailserver.imap.message.MessageSummary` (when the plan needs
    meta), ``header`` its raw header block, ``raw`` the whole message (when it needs raw).
    ``add_flags`` appends FLAGS (\\Seen was just set, RFC 3501 6.4.5); ``add_modseq`` appends
    MODSEQ (CONDSTORE enabled, RFC 7162 3.1.4).
    """
    from datetime import datetime

    out: list[tuple[str, enc.Value]] = []
    names = {a.name for a in plan.items}
    for a in plan.items:
        name = a.name
        if name == "UID":
            out.append(("UID", uid))
        elif name == "FLAGS":
            out.append(("FLAGS", enc.Raw(format_flags(flags, recent))))
        elif name == "INTERNALDATE":
            assert isinstance(internaldate, datetime)
            out.append(("INTERNALDATE", enc.Raw(enc.format_datetime(internaldate))))
        elif name == "RFC822.SIZE":
            out.append(("RFC822.SIZE", size))
        elif name == "MODSEQ":
            out.append(("MODSEQ", enc.Raw(b"(%d)" % modseq)))
        elif name in ("ENVELOPE", "BODYSTRUCTURE") or (name == "BODY" and a.section is None):
            assert isinstance(summary, MessageSummary)
            data = {"ENVELOPE": summary.envelope, "BODYSTRUCTURE": summary.bodystructure,
                    "BODY": summary.body}[name]
            out.append((name, enc.Raw(data)))
        elif name == "RFC822.HEADER":
            out.append((name, enc.Raw(enc.literal(header or b""))))
        elif name == "RFC822":
            assert raw is not None
            out.append((name, enc.Raw(enc.literal(raw))))
        elif name == "RFC822.TEXT":
            assert raw is not None and isinstance(summary, MessageSummary)
            data = raw[summary.root.body_start:]
            out.append((name, enc.Raw(enc.literal(data))))
        elif name in ("BINARY", "BINARY.SIZE"):
            out.append((a.response_name(), _binary(a, summary, raw)))
        else:  # BODY[section]<partial>
            assert a.section is not None
            data_or_none = _section(a.section, summary, header, raw)
            if data_or_none is None:
                out.append((a.response_name(), None))
            else:
                out.append((a.response_name(),
                            enc.Raw(enc.literal(apply_partial(data_or_none, a.partial)))))
    if add_flags and "FLAGS" not in names:
        out.append(("FLAGS", enc.Raw(format_flags(flags, recent))))
    if add_modseq and "MODSEQ" not in names:
        out.append(("MODSEQ", enc.Raw(b"(%d)" % modseq)))
    return out


def _binary(a: FetchAttr, summary: object, raw: bytes | None) -> enc.Value:
    """BINARY[section]<partial> (a literal, literal8 if NUL, NIL if no such part) or
    BINARY.SIZE[section] (RFC 3516 4.2); raises UnknownCte."""
    assert raw is not None and isinstance(summary, MessageSummary) and a.section is not None
    data = binary_section(raw, summary.root, a.section.parts)
    if a.name == "BINARY.SIZE":
        return 0 if data is None else len(data)
    if data is None:
        return None
    return enc.Raw(binary_literal(apply_partial(data, a.partial)))


def _section(section: Section, summary: object, header: bytes | None,
             raw: bytes | None) -> bytes | None:
    if not section.parts and section.specifier is None:
        assert raw is not None
        return raw
    if not section.parts and section.specifier in ("HEADER", "HEADER.FIELDS",
                                                   "HEADER.FIELDS.NOT") and header is not None:
        if section.specifier == "HEADER":
            return header
        return header_fields(header, section.fields, section.specifier == "HEADER.FIELDS.NOT")
    assert raw is not None and isinstance(summary, MessageSummary)
    return fetch_section(raw, summary.root, section)


def flags_line_maker(plan: FetchPlan, add_modseq: bool) -> FlagsLine | None:
    """For a FETCH of UID, FLAGS and MODSEQ only (a client resynchronising its flags, as
    ``FETCH 1:* (FLAGS UID)`` on a large mailbox): a function making one message's response
    line directly, the flag lists formatted once per distinct value, with the same octets as
    ``encoder.fetch(seq, fetch_items(...))``. None for any other plan."""
    names = [a.name for a in plan.items]
    if not names or not set(names) <= _ROW_ONLY or plan.sets_seen or any(
            a.section is not None or a.partial is not None for a in plan.items):
        return None
    if add_modseq and "MODSEQ" not in names:
        names.append("MODSEQ")
    formatted: dict[tuple[str, bool], bytes] = {}

    def line(seq: int, uid: int, flags: str, recent: bool, modseq: int) -> bytes:
        parts = []
        for name in names:
            if name == "UID":
                parts.append(b"UID %d" % uid)
            elif name == "FLAGS":
                f = formatted.get((flags, recent))
                if f is None:
                    f = formatted[flags, recent] = b"FLAGS " + format_flags(flags, recent)
                parts.append(f)
            else:
                parts.append(b"MODSEQ (%d)" % modseq)
        return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))

    return line
