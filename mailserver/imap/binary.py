"""BINARY (RFC 3516): a body part with its Content-Transfer-Encoding undone.

Pure: the stored octets and the part offsets in, decoded octets out.  Part numbers resolve as
for ``BODY[section]`` (:func:`~mailserver.imap.message.resolve_part`); ``BINARY[]`` is the
whole message as stored.  7bit, 8bit and binary parts are returned as they are; base64 and
quoted-printable are decoded leniently (characters outside the alphabet are skipped, as mail
readers do); any other encoding raises :class:`UnknownCte` (answered ``NO [UNKNOWN-CTE]``).
"""

from __future__ import annotations

import binascii
import re
from email.parser import BytesHeaderParser

from . import encoder as enc
from .message import Part, resolve_part
from .rawheaders import RAW_POLICY

__all__ = ["UnknownCte", "binary_section", "binary_literal"]

_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")


class UnknownCte(Exception):
    """The part's Content-Transfer-Encoding is not one the server can decode."""


def _cte(raw: bytes, part: Part) -> str:
    hdr = BytesHeaderParser(policy=RAW_POLICY).parsebytes(raw[part.start:part.body_start])
    return str(hdr.get("Content-Transfer-Encoding", "")).strip().lower()


def _base64(data: bytes) -> bytes:
    clean = _NOT_B64.sub(b"", data)
    clean = clean[:len(clean) - len(clean) % 4 if len(clean) % 4 == 1 else len(clean)]
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def binary_section(raw: bytes, root: Part, parts: tuple[int, ...]) -> bytes | None:
    """The decoded content of part ``parts`` (``()``: the whole message); None if there is
    no such part.

    Raises:
        UnknownCte: the part's encoding is unknown.
    """
    if not parts:
        return raw
    part = resolve_part(root, parts)
    if part is None:
        return None
    body = raw[part.body_start:part.end]
    cte = _cte(raw, part)
    if cte in _IDENTITY:
        return body
    if cte == "base64":
        return _base64(body)
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    raise UnknownCte(cte[:40])


def binary_literal(data: bytes) -> bytes:
    """``literal8`` (``~{n}``) when the octets hold NUL, else an ordinary literal."""
    if b"\x00" in data:
        return b"~{%d}\r\n" % len(data) + data
    return enc.literal(data)
