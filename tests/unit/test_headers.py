import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.delivery import parse_header_facts
from mailserver.headers import decode_words, header_block, parse_headers


@pytest.mark.parametrize("raw,subject", [
    ("Subject: Rendez-vous de contrôle\r\n\r\nx".encode(), "Rendez-vous de contrôle"),
    ("Subject: caf\xe9\r\n\r\nx".encode("latin-1"), "café"),
    (b"Subject: =?utf-8?q?R=C3=A9sultats?= de labo\r\n\r\nx", "Résultats de labo"),
    (b"Subject: =?bogus?q?x?=\r\n\r\nx", "=?bogus?q?x?="),
], ids=["raw-utf8", "latin1", "encoded-word", "unknown-charset"])
def test_subjects_read_as_written(raw: bytes, subject: str) -> None:
    assert decode_words(str(parse_headers(raw)["Subject"])) == subject
    assert parse_header_facts(raw).subject == subject


def test_header_block_never_reads_the_body() -> None:
    assert header_block(b"A: b\r\n\r\nbody\n\nmore") == b"A: b\r\n\r\n"
    assert header_block(b"A: b\n\nbody\r\n\r\n") == b"A: b\n\n"
    assert header_block(b"A: b\r\nC: d") == b"A: b\r\nC: d"


@given(st.binary(max_size=2000))
def test_parse_header_facts_never_raises(raw: bytes) -> None:
    parse_header_facts(raw)
