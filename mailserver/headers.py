"""Reading message headers as people write them (a leaf: stdlib only).

Headers may carry RFC 2047 encoded words or, as many clients and scripts send them (RFC 6532),
raw UTF-8; a few old ones send Latin-1. These helpers read the header block only (never the
body) and give text, never mojibake.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

__all__ = ["header_block", "parse_headers", "decode_words", "decode_encoded_words"]

_MAX_HEADER = 1_000_000


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
