"""A strict recursive-descent checker for the FETCH response grammar of RFC 3501 section 9.

Written for the tests, independent of the server's encoder: it accepts exactly the formal
syntax (no optional spaces, ``1*body`` and ``1*address`` without separator, quoted strings
without CR/LF/NUL or 8-bit octets, literals without NUL) and raises :class:`GrammarError` with
the offset of the first deviation.  Like real clients it chooses ``body-type-text`` for a
``"TEXT"`` media type and ``body-type-msg`` for ``"MESSAGE" "RFC822"``.

The parse result is a small tree for assertions: a body is a :class:`Body`, an envelope a
list of ten fields whose address lists are lists of 4-tuples, strings are ``bytes``, NIL is
``None`` and numbers are ``int``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["GrammarError", "Body", "parse_body", "parse_envelope", "parse_fetch",
           "check_fetch_lines"]


class GrammarError(ValueError):
    """The data does not match the grammar."""


@dataclass
class Body:
    """One parsed ``body``: ``parts`` for a multipart, ``message`` for message/rfc822."""

    type: bytes
    subtype: bytes
    params: list[tuple[bytes, bytes]] | None = None
    parts: list[Body] = field(default_factory=list)
    envelope: list[object] | None = None
    message: Body | None = None
    size: int | None = None
    lines: int | None = None
    extension: list[object] = field(default_factory=list)


_NUMBER = re.compile(rb"[0-9]+")
_ATOM = re.compile(rb"[^(){ %*\"\\\]\x00-\x1f\x7f-\xff]+")
_FETCH_NAME = re.compile(rb"[A-Z0-9.]+")


class _P:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> GrammarError:
        near = self.data[max(0, self.pos - 30):self.pos + 30]
        return GrammarError(f"expected {what} at offset {self.pos}: ...{near!r}...")

    def peek(self, n: int = 1) -> bytes:
        return self.data[self.pos:self.pos + n]

    def lit(self, text: bytes) -> None:
        if self.data[self.pos:self.pos + len(text)].upper() != text.upper():
            raise self.fail(repr(text))
        self.pos += len(text)

    def try_lit(self, text: bytes) -> bool:
        if self.data[self.pos:self.pos + len(text)].upper() == text.upper():
            self.pos += len(text)
            return True
        return False

    def sp(self) -> None:
        self.lit(b" ")

    def number(self) -> int:
        m = _NUMBER.match(self.data, self.pos)
        if m is None:
            raise self.fail("number")
        self.pos = m.end()
        return int(m.group())

    def nil(self) -> bool:
        if self.data[self.pos:self.pos + 3].upper() == b"NIL":
            self.pos += 3
            return True
        return False

    def string(self) -> bytes:
        c = self.peek()
        if c == b'"':
            return self.quoted()
        if c == b"{":
            return self.literal()
        raise self.fail("string")

    def quoted(self) -> bytes:
        self.lit(b'"')
        out = bytearray()
        while True:
            c = self.peek()
            if c == b"":
                raise self.fail("closing quote")
            if c == b'"':
                self.pos += 1
                return bytes(out)
            if c == b"\\":
                nxt = self.data[self.pos + 1:self.pos + 2]
                if nxt not in (b'"', b"\\"):
                    raise self.fail("quoted-specials after backslash")
                out += nxt
                self.pos += 2
                continue
            if c[0] in (0, 0x0A, 0x0D) or c[0] >= 0x80:
                raise self.fail("TEXT-CHAR in a quoted string")
            out += c
            self.pos += 1

    def literal(self) -> bytes:
        self.lit(b"{")
        n = self.number()
        self.lit(b"}\r\n")
        data = self.data[self.pos:self.pos + n]
        if len(data) != n:
            raise self.fail(f"{n} literal octets")
        if b"\x00" in data:
            raise self.fail("CHAR8 (no NUL) in a literal")
        self.pos += n
        return data

    def nstring(self) -> bytes | None:
        return None if self.nil() else self.string()


def _param(p: _P) -> list[tuple[bytes, bytes]] | None:
    """body-fld-param = "(" string SP string *(SP string SP string) ")" / nil"""
    if p.nil():
        return None
    p.lit(b"(")
    out = []
    while True:
        k = p.string()
        p.sp()
        out.append((k, p.string()))
        if p.try_lit(b")"):
            return out
        p.sp()


def _dsp(p: _P) -> object:
    """body-fld-dsp = "(" string SP body-fld-param ")" / nil"""
    if p.nil():
        return None
    p.lit(b"(")
    kind = p.string()
    p.sp()
    params = _param(p)
    p.lit(b")")
    return (kind, params)


def _lang(p: _P) -> object:
    """body-fld-lang = nstring / "(" string *(SP string) ")" """
    if not p.try_lit(b"("):
        return p.nstring()
    out = [p.string()]
    while not p.try_lit(b")"):
        p.sp()
        out.append(p.string())
    return out


def _extension(p: _P) -> object:
    """body-extension = nstring / number / "(" body-extension *(SP body-extension) ")" """
    if p.try_lit(b"("):
        out = [_extension(p)]
        while not p.try_lit(b")"):
            p.sp()
            out.append(_extension(p))
        return out
    if p.peek().isdigit():
        return p.number()
    return p.nstring()


def _ext_tail(p: _P, first: object) -> list[object]:
    """[SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]"""
    out = [first]
    if p.peek() != b" ":
        return out
    p.sp()
    out.append(_dsp(p))
    if p.peek() != b" ":
        return out
    p.sp()
    out.append(_lang(p))
    if p.peek() != b" ":
        return out
    p.sp()
    out.append(p.nstring())
    while p.peek() == b" ":
        p.sp()
        out.append(_extension(p))
    return out


def _body(p: _P) -> Body:
    """body = "(" (body-type-1part / body-type-mpart) ")" """
    p.lit(b"(")
    if p.peek() == b"(":
        parts = []
        while p.peek() == b"(":  # 1*body: no separator
            parts.append(_body(p))
        p.sp()
        b = Body(b"MULTIPART", p.string(), parts=parts)
        if p.peek() == b" ":
            p.sp()
            b.params = _param(p)
            b.extension = _ext_tail(p, b.params)[1:]
        p.lit(b")")
        return b
    start = p.pos
    mtype = p.string()
    quoted_type = p.data[start:start + 1] == b'"'
    p.sp()
    sub_start = p.pos
    subtype = p.string()
    b = Body(mtype.upper(), subtype.upper())
    p.sp()
    b.params = _param(p)  # body-fields
    p.sp()
    p.nstring()  # body-fld-id
    p.sp()
    p.nstring()  # body-fld-desc
    p.sp()
    p.string()  # body-fld-enc
    p.sp()
    b.size = p.number()  # body-fld-octets
    is_msg = (quoted_type and b.type == b"MESSAGE" and b.subtype == b"RFC822"
              and p.data[sub_start:sub_start + 1] == b'"')
    if is_msg:
        p.sp()
        b.envelope = _envelope(p)
        p.sp()
        b.message = _body(p)
        p.sp()
        b.lines = p.number()
    elif quoted_type and b.type == b"TEXT":
        p.sp()
        b.lines = p.number()
    if p.peek() == b" ":
        p.sp()
        b.extension = _ext_tail(p, p.nstring())  # body-fld-md5 first
    p.lit(b")")
    return b


def _address(p: _P) -> tuple[bytes | None, ...]:
    """address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")" """
    p.lit(b"(")
    out = [p.nstring()]
    for _ in range(3):
        p.sp()
        out.append(p.nstring())
    p.lit(b")")
    return tuple(out)


def _addresses(p: _P) -> list[tuple[bytes | None, ...]] | None:
    """env-from etc. = "(" 1*address ")" / nil"""
    if p.nil():
        return None
    p.lit(b"(")
    out = [_address(p)]
    while p.peek() == b"(":  # 1*address: no separator
        out.append(_address(p))
    p.lit(b")")
    return out


def _envelope(p: _P) -> list[object]:
    p.lit(b"(")
    out: list[object] = [p.nstring()]
    p.sp()
    out.append(p.nstring())
    for _ in range(6):
        p.sp()
        out.append(_addresses(p))
    for _ in range(2):
        p.sp()
        out.append(p.nstring())
    p.lit(b")")
    return out


def _whole(data: bytes, fn: object) -> object:
    p = _P(data)
    out = fn(p)  # type: ignore[operator]
    if p.pos != len(data):
        raise p.fail("end of data")
    return out


def parse_body(data: bytes) -> Body:
    """Parse one ``body`` (BODY or BODYSTRUCTURE value) and nothing else."""
    out = _whole(data, _body)
    assert isinstance(out, Body)
    return out


def parse_envelope(data: bytes) -> list[object]:
    """Parse one ``envelope`` and nothing else."""
    out = _whole(data, _envelope)
    assert isinstance(out, list)
    return out


def _flag_list(p: _P) -> list[bytes]:
    p.lit(b"(")
    out: list[bytes] = []
    while not p.try_lit(b")"):
        if out:
            p.sp()
        start = p.pos
        p.try_lit(b"\\")
        m = _ATOM.match(p.data, p.pos)
        if m is None:
            raise p.fail("flag")
        p.pos = m.end()
        out.append(p.data[start:p.pos])
    return out


def _section_name(p: _P) -> bytes:
    """``BODY[section]<origin>``: the section text up to the closing bracket (header lists
    included), then the optional origin."""
    start = p.pos
    depth = 0
    while True:
        c = p.peek()
        if c == b"":
            raise p.fail("]")
        p.pos += 1
        if c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
        elif c == b"]" and depth == 0:
            break
    if p.try_lit(b"<"):
        p.number()
        p.lit(b">")
    return p.data[start:p.pos]


_DATE_TIME = re.compile(rb"[ 0-9][0-9]-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-"
                        rb"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}")
_SECTION_BINARY = re.compile(rb"\[(?:[1-9][0-9]*(?:\.[1-9][0-9]*)*)?\]")


def _section_binary(p: _P, *, partial: bool) -> bytes:
    """section-binary = "[" [section-part] "]", then ``<number>`` for BINARY (RFC 3516)."""
    start = p.pos
    m = _SECTION_BINARY.match(p.data, p.pos)
    if m is None:
        raise p.fail("section-binary")
    p.pos = m.end()
    if partial and p.try_lit(b"<"):
        p.number()
        p.lit(b">")
    return p.data[start:p.pos]


def _literal8(p: _P) -> bytes:
    """literal8 = "~{" number "}" CRLF *OCTET (NUL allowed)."""
    p.lit(b"~{")
    n = p.number()
    p.lit(b"}\r\n")
    data = p.data[p.pos:p.pos + n]
    if len(data) != n:
        raise p.fail(f"{n} literal8 octets")
    p.pos += n
    return data


def _msg_att(p: _P) -> tuple[bytes, object]:
    m = _FETCH_NAME.match(p.data, p.pos)
    if m is None:
        raise p.fail("fetch item name")
    name = m.group()
    p.pos = m.end()
    if name == b"BODY" and p.peek() == b"[":
        name += _section_name(p)
        p.sp()
        return name, p.nstring()
    if name == b"BINARY" and p.peek() == b"[":  # RFC 3516: nstring / literal8
        name += _section_binary(p, partial=True)
        p.sp()
        return name, _literal8(p) if p.peek(2) == b"~{" else p.nstring()
    if name == b"BINARY.SIZE":
        name += _section_binary(p, partial=False)
        p.sp()
        return name, p.number()
    p.sp()
    if name == b"ENVELOPE":
        return name, _envelope(p)
    if name in (b"BODY", b"BODYSTRUCTURE"):
        return name, _body(p)
    if name == b"FLAGS":
        return name, _flag_list(p)
    if name in (b"UID", b"RFC822.SIZE"):
        return name, p.number()
    if name == b"MODSEQ":  # permsg-modsequence = mod-sequence-value: positive (RFC 7162 7)
        p.lit(b"(")
        n = p.number()
        if n == 0:
            raise p.fail("mod-sequence-value (not 0)")
        p.lit(b")")
        return name, n
    if name == b"INTERNALDATE":
        value = p.quoted()
        if not _DATE_TIME.fullmatch(value):
            raise p.fail("date-time")
        return name, value
    if name in (b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT"):
        return name, p.nstring()
    raise p.fail(f"known fetch item, not {name!r}")


def parse_fetch(data: bytes) -> tuple[int, dict[bytes, object]]:
    """Parse ``"*" SP nz-number SP "FETCH" SP msg-att CRLF`` strictly.

    Returns:
        the sequence number and the items by name (``BODY[1.MIME]`` etc. as sent).
    """
    p = _P(data)
    p.lit(b"* ")
    seq = p.number()
    if seq == 0:
        raise p.fail("nz-number")
    p.lit(b" FETCH (")
    items: dict[bytes, object] = {}
    while True:
        name, value = _msg_att(p)
        items[name] = value
        if p.try_lit(b")"):
            break
        p.sp()
    p.lit(b"\r\n")
    if p.pos != len(data):
        raise p.fail("end of response")
    return seq, items


def check_fetch_lines(lines: list[bytes]) -> list[dict[bytes, object]]:
    """Parse every untagged FETCH response among ``lines`` (as read by the tests' raw client:
    literals joined to their line) and return their items."""
    return [parse_fetch(line)[1] for line in lines if re.match(rb"\* \d+ FETCH ", line)]
