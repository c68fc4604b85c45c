"""Message structure for FETCH: BODYSTRUCTURE, BODY, ENVELOPE and sections.

Works on the raw RFC 5322 octets.  The MIME tree is found with our own
boundary scan so every part is a pair of offsets into the original bytes;
section fetches therefore return the exact original octets (RFC 3501 6.4.5).
Header *values* are read with the stdlib ``email`` package (a compat32 policy that keeps
encoded words and 8-bit octets as sent: :mod:`.rawheaders`).

:class:`MessageSummary` is the cacheable result: pre-encoded ENVELOPE, BODY
and BODYSTRUCTURE plus the part offsets, serialisable to JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from typing import Any

from .encoder import Adjacent, Value, encode_value
from .envelope import envelope, unfold
from .fetchspec import Section
from .rawheaders import RAW_POLICY

__all__ = ["Part", "parse_structure", "MessageSummary", "fetch_section", "apply_partial",
           "header_fields", "resolve_part"]

#: Bumped when the summary's content changes (2: 8-bit header octets kept as sent; 3: no SP
#: between the parts of a multipart and between addresses, unfolded Content-Type parameters,
#: empty parts between adjacent delimiters, message/rfc822 parsed whatever its encoding; 4:
#: charset us-ascii for every text part without one, line breaks counted as Dovecot does).
_CACHE_VERSION = 4

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_MAX_DEPTH = 50  # RFC 2046 puts no limit; we stop treating deeper parts as containers


@dataclass(frozen=True, slots=True)
class Part:
    """Offsets of one MIME entity in the message.

    ``start``..``body_start`` is its header (blank line included),
    ``body_start``..``end`` its body.  ``children`` are the parts of a
    multipart; ``message`` is the entity inside a message/rfc822 part.
    """

    start: int
    body_start: int
    end: int
    children: tuple[Part, ...] = ()
    message: Part | None = None

    def to_json(self) -> list[object]:
        """Compact nested-list form."""
        return [self.start, self.body_start, self.end, [c.to_json() for c in self.children],
                self.message.to_json() if self.message else None]

    @classmethod
    def from_json(cls, data: list[object]) -> Part:
        """Inverse of :meth:`to_json`."""
        s, b, e, kids, msg = data
        assert isinstance(s, int) and isinstance(b, int) and isinstance(e, int)
        assert isinstance(kids, list)
        return cls(s, b, e, tuple(cls.from_json(k) for k in kids),
                   cls.from_json(msg) if isinstance(msg, list) else None)


def _split_header(raw: bytes, start: int, end: int) -> int:
    """Return where the body starts (after the blank line), or ``end``."""
    if raw.startswith(b"\r\n", start) or raw.startswith(b"\n", start):
        return min(end, start + (2 if raw[start] == 0x0D else 1))
    m = _HEADER_END.search(raw, start, end)
    return end if m is None else m.end()


def _parse_header(block: bytes) -> Message:
    """Parse a header block, unfolded first (RFC 5322 2.2.3): a folded parameter such as
    ``boundary="a\r\n b"`` then reads ``a b`` instead of keeping the line break."""
    return BytesHeaderParser(policy=RAW_POLICY).parsebytes(_FOLD.sub(b"", block))


def _headers(raw: bytes, part: Part) -> Message:
    return _parse_header(raw[part.start:part.body_start])


def _parse(raw: bytes, start: int, end: int, digest: bool, depth: int,
           info: list[tuple[Part, Message]]) -> Part:
    body_start = _split_header(raw, start, end)
    hdr = _parse_header(raw[start:body_start])
    if digest:
        hdr.set_default_type("message/rfc822")  # RFC 2046 5.1.5
    ctype = hdr.get_content_type()
    children: tuple[Part, ...] = ()
    message = None
    if depth < _MAX_DEPTH and ctype.startswith("multipart/") and hdr.get_boundary():
        boundary = hdr.get_boundary() or ""
        spans = _split_multipart(raw, body_start, end, boundary.encode("utf-8", "surrogateescape"))
        children = tuple(_parse(raw, a, b, ctype == "multipart/digest", depth + 1, info)
                         for a, b in spans)
    elif depth < _MAX_DEPTH and ctype == "message/rfc822":
        # Whatever its (forbidden, RFC 2046 5.2.1) encoding, as Dovecot does: RFC 3501 9
        # body-type-msg must carry an envelope and a body, and clients expect them.
        message = _parse(raw, body_start, end, False, depth + 1, info)
    part = Part(start, body_start, end, children, message)
    info.append((part, hdr))
    return part


def _split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Body spans of a multipart's parts (RFC 2046 5.1.1: CRLF before a delimiter is its own).

    A delimiter is a line starting with ``--boundary``; the line break ending the previous
    delimiter line is not looked for again, so two delimiter lines in a row enclose an empty
    part instead of merging the parts around them.
    """
    body = raw[start:end]
    delim = re.compile(rb"(?:(?<=\n)|\A)--" + re.escape(boundary)
                       + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    spans: list[tuple[int, int]] = []
    open_at: int | None = None
    for m in delim.finditer(body):
        if open_at is not None:
            close = m.start()
            for eol in (b"\r\n", b"\n"):  # the CRLF before the delimiter, if the part has one
                if close - len(eol) >= open_at and body.startswith(eol, close - len(eol)):
                    close -= len(eol)
                    break
            spans.append((start + open_at, start + close))
        if m.group(1):
            return spans
        open_at = m.end()
    if open_at is not None:
        spans.append((start + open_at, end))
    return spans


def parse_structure(raw: bytes) -> tuple[Part, dict[int, Message]]:
    """Find the MIME tree of ``raw``.

    Returns:
        the root :class:`Part` and a map from ``id(part)`` to its parsed headers.
    """
    info: list[tuple[Part, Message]] = []
    root = _parse(raw, 0, len(raw), False, 0, info)
    return root, {id(p): h for p, h in info}


def _lines(data: bytes) -> int:
    """Line breaks in a body (as Dovecot and Cyrus count: a last line without its line
    break, as before a multipart delimiter, is not counted)."""
    return data.count(b"\n")


def _params(hdr: Message, name: str = "content-type") -> Value:
    params = hdr.get_params(header=name) or []
    out: list[Value] = []
    for i, (k, v) in enumerate(params):
        if i == 0 or not k:
            continue  # the type/subtype or disposition type itself; "" from a stray ";"
        out += [k, collapse_rfc2231_value(v) if isinstance(v, tuple) else str(v)]
    if (name == "content-type" and hdr.get_content_maintype() == "text"
            and not any(str(k).lower() == "charset" for k in out[::2])):
        out += ["charset", "us-ascii"]  # RFC 2045 5.2, RFC 2046 4.1.2: the default charset
    return out or None


def _field(hdr: Message, name: str) -> str | None:
    v = hdr.get(name)
    return None if v is None else unfold(str(v))


def _body(raw: bytes, part: Part, hdrs: dict[int, Message], extensible: bool) -> Value:
    hdr = hdrs[id(part)]
    if part.children:
        # RFC 3501 9: body-type-mpart = 1*body SP media-subtype: no SP between the parts.
        kids = Adjacent(tuple(_body(raw, c, hdrs, extensible) for c in part.children))
        out: list[Value] = [kids, hdr.get_content_subtype()]
        if extensible:
            out += [_params(hdr), *_ext(hdr)]
        return out
    maintype, subtype = hdr.get_content_maintype(), hdr.get_content_subtype()
    if maintype == "multipart":  # no boundary or no parts: describe it as text (RFC 2046 5.1.1)
        maintype, subtype = "text", "plain"
    size = part.end - part.body_start
    out = [maintype, subtype, _params(hdr), _field(hdr, "Content-ID"),
           _field(hdr, "Content-Description"),
           (_field(hdr, "Content-Transfer-Encoding") or "7bit").upper(), size]
    if part.message is not None:
        out += [envelope(hdrs[id(part.message)]), _body(raw, part.message, hdrs, extensible),
                _lines(raw[part.body_start:part.end])]
    elif maintype == "text":
        out.append(_lines(raw[part.body_start:part.end]))
    if extensible:
        out += [_field(hdr, "Content-MD5"), *_ext(hdr)]
    return out


def _ext(hdr: Message) -> list[Value]:
    disp = hdr.get("Content-Disposition")
    disposition: Value = None
    if disp is not None:
        kind = unfold(str(disp)).split(";", 1)[0].strip()
        disposition = [kind, _params(hdr, "content-disposition")]
    lang = _field(hdr, "Content-Language")
    languages: Value = [x.strip() for x in lang.split(",") if x.strip()] if lang else None
    return [disposition, languages, _field(hdr, "Content-Location")]


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Cacheable precomputed FETCH data for one message.

    ``envelope``, ``body`` and ``bodystructure`` are encoded response
    values (use ``encoder.Raw``); ``root`` holds the part offsets.
    """

    size: int
    envelope: bytes
    body: bytes
    bodystructure: bytes
    root: Part

    @classmethod
    def from_bytes(cls, raw: bytes) -> MessageSummary:
        """Parse ``raw`` once."""
        root, hdrs = parse_structure(raw)
        return cls(len(raw), encode_value(envelope(hdrs[id(root)])),
                   encode_value(_body(raw, root, hdrs, False)),
                   encode_value(_body(raw, root, hdrs, True)), root)

    def to_obj(self) -> dict[str, object]:
        """JSON-ready form (byte strings as latin-1 text, losslessly)."""
        return {"v": _CACHE_VERSION, "size": self.size,
                "env": self.envelope.decode("latin-1"),
                "body": self.body.decode("latin-1"),
                "bs": self.bodystructure.decode("latin-1"),
                "root": self.root.to_json()}

    def to_json(self) -> bytes:
        """Serialise (see :meth:`to_obj`)."""
        return json.dumps(self.to_obj(), separators=(",", ":")).encode()

    @classmethod
    def from_obj(cls, d: dict[str, Any]) -> MessageSummary:
        """Inverse of :meth:`to_obj`.

        Raises:
            ValueError: a summary from another cache version (the caller recomputes it).
        """
        if d.get("v") != _CACHE_VERSION:  # older summaries: the caller recomputes
            raise ValueError("stale message summary")
        return cls(d["size"], d["env"].encode("latin-1"), d["body"].encode("latin-1"),
                   d["bs"].encode("latin-1"), Part.from_json(d["root"]))

    @classmethod
    def from_json(cls, data: bytes) -> MessageSummary:
        """Inverse of :meth:`to_json`."""
        return cls.from_obj(json.loads(data))


# -- sections ---------------------------------------------------------------------

def resolve_part(root: Part, parts: tuple[int, ...]) -> Part | None:
    """Follow part numbers (RFC 3501 6.4.5), as Dovecot does.

    The parts of a multipart are numbered from 1; a non-multipart entity has only part 1,
    itself (its body is the part's content, its header the part's MIME header).  A number
    *after* a message/rfc822 part goes into the encapsulated message, so for a top-level
    message/rfc822 ``1`` is the encapsulated message (as a body part), ``1.HEADER`` its header
    (see :func:`fetch_section`) and ``1.1`` the first part of its body.
    """
    cur = root
    for i, n in enumerate(parts):
        more = i + 1 < len(parts)
        if cur.children:
            if n > len(cur.children):
                return None
            cur = cur.children[n - 1]
        elif n != 1 or (more and cur.message is None):
            return None  # no such part; nothing lies below a non-message leaf
        if more and cur.message is not None:
            cur = cur.message
    return cur


def header_fields(header: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """The header lines (with continuations) whose names are (not) in ``names``, + CRLF."""
    wanted = {n.lower() for n in names}
    out = bytearray()
    keep = False
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out += line
            continue
        name = line.split(b":", 1)[0].strip().decode("latin-1").lower()
        keep = (name in wanted) != exclude
        if keep:
            out += line
    return bytes(out) + b"\r\n"


def fetch_section(raw: bytes, root: Part, section: Section) -> bytes | None:
    """Return the octets of ``section`` (RFC 3501 6.4.5), or None if it does not exist."""
    if not section.parts and section.specifier is None:
        return raw
    part = resolve_part(root, section.parts) if section.parts else root
    if part is None:
        return None
    spec = section.specifier
    if spec is None:
        return raw[part.body_start:part.end]
    if spec == "MIME":
        return raw[part.start:part.body_start]
    target = part if not section.parts else part.message
    if target is None:
        return None  # HEADER/TEXT need a message/rfc822 part (RFC 3501 6.4.5)
    if spec == "TEXT":
        return raw[target.body_start:target.end]
    header = raw[target.start:target.body_start]
    if spec == "HEADER":
        return header
    return header_fields(header, section.fields, spec == "HEADER.FIELDS.NOT")


def apply_partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """``<origin.length>``: an origin past the end gives an empty string (RFC 3501 6.4.5)."""
    if partial is None:
        return data
    origin, length = partial
    return data[origin:origin + length]
