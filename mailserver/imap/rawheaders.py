"""Header values exactly as sent, including raw 8-bit (UTF-8) octets.

RFC 6532 lets messages carry UTF-8 directly in header fields, and many clients do so in
``Subject`` and display names (and RFC 2231-less ``filename="…"`` parameters).  The stdlib
``compat32`` policy keeps those octets as surrogate escapes internally but, on *fetching* a
value, turns it into an ``email.header.Header`` whose ``str()`` replaces every such octet with
U+FFFD.  The IMAP front end must instead:

* return the original octets in ENVELOPE and BODYSTRUCTURE strings (RFC 3501 7.4.2: the
  server does not transform header values; 8-bit data goes out as a literal), and
* match SEARCH strings against the UTF-8 text (RFC 3501 6.4.4, RFC 6855 3).

:data:`RAW_POLICY` is ``compat32`` except that fetched values stay ``str`` with surrogate
escapes (``_b`` in :mod:`.encoder` turns them back into the original octets);
:func:`header_text` gives the human text of such a value for matching.
"""

from __future__ import annotations

from email.policy import Compat32

from mailserver.headers import decode_encoded_words

__all__ = ["RAW_POLICY", "header_text", "to_text"]


class _RawCompat32(Compat32):
    """``compat32`` without the lossy ``Header`` conversion of 8-bit values on fetch."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


#: Parse with this policy to keep 8-bit header octets (as surrogate escapes) on ``get``.
RAW_POLICY = _RawCompat32()


def to_text(value: str) -> str:
    """Surrogate-escaped octets → text: UTF-8 (RFC 6532) if valid, else Latin-1."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header_text(value: object) -> str:
    """The readable text of a header value: raw 8-bit decoded, RFC 2047 words decoded."""
    return decode_encoded_words(to_text(str(value)))
