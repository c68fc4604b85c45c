"""Modified UTF-7 for mailbox names (RFC 3501 5.1.3).

Printable US-ASCII other than ``&`` stands for itself; ``&`` is written
``&-``; other characters are UTF-16BE, base64-encoded with ``,`` instead of
``/`` and without padding, between ``&`` and ``-``.
"""

from __future__ import annotations

import base64
import re

__all__ = ["encode_mutf7", "decode_mutf7"]

_SHIFTED = re.compile(r"&([A-Za-z0-9+,]*)-")


def encode_mutf7(name: str) -> bytes:
    """Encode a Unicode mailbox name to modified UTF-7."""
    out = bytearray()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.extend(b"&" + base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.extend(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            pending.append(ch)
    flush()
    return bytes(out)


def decode_mutf7(raw: bytes | str) -> str:
    """Decode a modified UTF-7 mailbox name.

    Raises:
        ValueError: on a malformed name (bare 8-bit, unterminated shift,
            bad base64, ASCII encoded in base64, or non-canonical padding).
    """
    text = raw.decode("ascii") if isinstance(raw, bytes) else raw  # may raise UnicodeError
    if any(not 0x20 <= ord(c) <= 0x7E for c in text):
        raise ValueError("mailbox name has non-printable or 8-bit characters")
    out: list[str] = []
    pos = 0
    while pos < len(text):
        amp = text.find("&", pos)
        if amp < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:amp])
        m = _SHIFTED.match(text, amp)
        if m is None:
            raise ValueError("unterminated or invalid '&' shift")
        b64 = m.group(1)
        if not b64:
            out.append("&")
        else:
            data = b64.replace(",", "/")
            try:
                decoded = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
                chars = decoded.decode("utf-16-be")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError("bad modified base64 in mailbox name") from exc
            if any(0x20 <= ord(c) <= 0x7E for c in chars):
                # RFC 3501 5.1.3: printable ASCII MUST NOT be shifted.
                raise ValueError("printable ASCII encoded in mailbox name")
            out.append(chars)
        pos = m.end()
    return "".join(out)
