"""Reading message headers as people write them (a leaf: stdlib only).

Headers may carry RFC 2047 encoded words or, as many clients and scripts send them (RFC 6532),
raw UTF-8; a few old ones send Latin-1. These helpers read the header block only (never the
body) and give text, never mojibake.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError, ObsoleteHeaderDefect
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader, HeaderRegistry
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

__all__ = ["header_block", "parse_headers", "decode_words", "decode_encoded_words",
           "raw_fields", "strict_addresses"]

_MAX_HEADER = 1_000_000
# Any of CRLF, CR, LF ends a line for some reader (the stdlib parser splits on all three).
_LINE_END = re.compile(rb"\r\n|\r|\n")
_REGISTRY = HeaderRegistry()


def header_block(raw: bytes) -> bytes:
    """The header section (up to the first empty line), so parsing costs the same for a
    10 KB and a 25 MB message."""
    end = raw.find(b"\r\n\r\n")
    # A bare-LF blank line counts only if it comes first; never scan the body for one.
    lf_end = raw.find(b"\n\n", 0, end if end >= 0 else _MAX_HEADER)
    if lf_end >= 0 and (end < 0 or lf_end < end):
        return raw[: lf_end + 2]
    if end < 0:
        return raw[:_MAX_HEADER]
    return raw[: end + 4]


def parse_headers(raw: bytes) -> Message:
    """The message's headers (compat32 ``Message`` with text values)."""
    block = header_block(raw)
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    return HeaderParser(policy=compat32).parsestr(text)


def decode_encoded_words(value: str) -> str:
    """RFC 2047 encoded words → text, white space kept; malformed input is returned as is."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, ValueError, UnicodeError):
        return value


def decode_words(value: str) -> str:
    """A header value as one line of text: encoded words decoded, folding white space joined."""
    if "=?" not in value:
        return " ".join(value.split())
    return decode_encoded_words(value)


def raw_fields(raw: bytes, names: frozenset[str]) -> dict[str, list[str]]:
    """Every field of the header section named in ``names`` (lower case), unfolded.

    Read as the most lenient recipient would: a line ends at CRLF, bare CR or bare LF; a
    field name may be followed by white space before its colon (RFC 5322 4.5 obsolete
    syntax); a line that is neither a field nor a continuation does not end the header
    section. Unfolding removes the line breaks only (RFC 5322 2.2.3): the white space that
    starts a continuation line stays. Values are UTF-8 (RFC 6532), else Latin-1.

    Returns:
        ``{name: [value, ...]}`` with one entry per field, in order; absent names map to [].
    """
    fields: list[tuple[str, list[bytes]]] = []
    current: list[bytes] | None = None
    for line in _LINE_END.split(header_block(raw)):
        if not line:
            break  # the empty line that ends the header section
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(b":")
        key = name.rstrip(b" \t").decode("latin-1").lower() if colon else ""
        current = [value] if key in names else None
        if current is not None:
            fields.append((key, current))
    found: dict[str, list[str]] = {n: [] for n in names}
    for key, parts in fields:
        found[key].append(_field_text(parts))
    return found


def _field_text(parts: list[bytes]) -> str:
    data = b"".join(parts)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_WORD = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"  # atext but "=" and "?" (no encoded word)
_ADDR = rf"{_WORD}(?:\.{_WORD})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:(?:{_WORD}(?: +{_WORD})*|\"[\x20\x21\x23-\x3c\x3e\x40-\x5b\x5d-\x7e]*\")"
    rf"[ \t]*<(?P<a>{_ADDR})>|(?P<b>{_ADDR}))[ \t]*")
"""One mailbox in its everyday forms (``a@b.c``, ``Name <a@b.c>``, ``"Dr X, Y" <a@b.c>``):
printable ASCII, no comment, no folding, no encoded word, no obsolete syntax. The stdlib
parser finds exactly this address in such a value with no defect (property-tested against
it in ``tests/unit/test_headers_fast.py``), at a twentieth of its cost."""


def strict_addresses(value: str) -> tuple[str, ...] | None:
    """The addr-specs of an address-list header value, or None when it is malformed.

    Parsed with the stdlib RFC 5322 parser (``email.headerregistry``); any defect other than
    accepted obsolete syntax (e.g. ``Dr. Martin <...>`` with an unquoted dot) makes the value
    malformed, as does an address without a domain or text left after an address (a folded
    ``a@b.test<CRLF><TAB>foo`` that some readers join into ``a@b.testfoo``).
    A value in the everyday form of one mailbox (:data:`_SIMPLE_MAILBOX`) skips the parser.
    """
    if (simple := _SIMPLE_MAILBOX.fullmatch(value)) is not None:
        return (simple["a"] or simple["b"],)
    return parsed_addresses(value)


def parsed_addresses(value: str) -> tuple[str, ...] | None:
    """:func:`strict_addresses` by the stdlib parser alone."""
    try:
        header = _REGISTRY("From", value)
        addresses = header.addresses if isinstance(header, AddressHeader) else ()
    except (HeaderParseError, IndexError, ValueError, AttributeError, TypeError):
        # AttributeError, TypeError: the stdlib parser's own bugs on some values (``.:``,
        # `` .\``), found by the property test: malformed, not a crash.
        return None
    if not isinstance(header, AddressHeader) or any(
            not isinstance(d, ObsoleteHeaderDefect) for d in header.defects):
        return None
    out: list[str] = []
    for address in addresses:
        if not address.username or not address.domain:
            return None
        out.append(address.addr_spec)
    return tuple(out)
