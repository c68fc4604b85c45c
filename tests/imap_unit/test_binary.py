"""RFC 3516 decoding of one part, as a table."""

from __future__ import annotations

import pytest

from mailserver.imap.binary import UnknownCte, binary_literal, binary_section
from mailserver.imap.message import parse_structure


def _single(cte: str, body: bytes) -> bytes:
    return (f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode() if cte else b"\r\n") + body


CASES = [
    ("identity", "", b"abc\r\n", b"abc\r\n"),
    ("8bit", "8BIT", b"caf\xc3\xa9", b"caf\xc3\xa9"),
    ("base64", "base64", b"AAEC\r\n/w==\r\n", b"\x00\x01\x02\xff"),
    ("base64-junk", "Base64", b"AA*EC\r\n/w\r\n", b"\x00\x01\x02\xff"),  # missing padding
    ("base64-odd", "base64", b"AAECA", b"\x00\x01\x02"),  # a lone trailing char is dropped
    ("qp", "quoted-printable", b"a=3Db=\r\nc\r\n", b"a=bc\r\n"),
]


@pytest.mark.parametrize(("name", "cte", "body", "decoded"), CASES, ids=[c[0] for c in CASES])
def test_decode(name: str, cte: str, body: bytes, decoded: bytes) -> None:
    raw = _single(cte, body)
    root, _ = parse_structure(raw)
    assert binary_section(raw, root, (1,)) == decoded
    assert binary_section(raw, root, ()) == raw
    assert binary_section(raw, root, (2,)) is None


def test_unknown_cte_and_literal8() -> None:
    raw = _single("x-uuencode", b"begin")
    root, _ = parse_structure(raw)
    with pytest.raises(UnknownCte):
        binary_section(raw, root, (1,))
    assert binary_literal(b"a\x00") == b"~{2}\r\na\x00"
    assert binary_literal(b"ab") == b"{2}\r\nab"
