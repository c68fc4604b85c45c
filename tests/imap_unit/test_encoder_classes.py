"""The encoder's octet classes (regular expressions) against their definitions in RFC 3501 9,
written out octet by octet: a quoted string holds no CR, LF, NUL or 8-bit octet; a bare
atom none of ``atom-specials`` (and no 8-bit octet)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailserver.imap import encoder as enc

_ATOM_SPECIALS = set(b'(){ %*"\\]') | set(range(0x20)) | {0x7F}


def _quotable_by_definition(data: bytes) -> bool:
    return len(data) <= enc._QUOTED_MAX and not any(
        b >= 0x80 or b in (0x00, 0x0A, 0x0D) for b in data)


def _astring_by_definition(raw: bytes) -> bytes:
    if raw and raw.upper() != b"NIL" and not any(b in _ATOM_SPECIALS or b >= 0x80 for b in raw):
        return raw
    return enc.string(raw)


_octets = st.one_of(st.binary(max_size=40), st.binary(min_size=1020, max_size=1030),
                    st.sampled_from([b"", b"NIL", b"nil", b"a]b", b"x\x7fy", b"\xc3\xa9",
                                     b"INBOX", b"a b", b'"q"', b"back\\slash"]))


@given(_octets)
def test_quotable_is_the_definition(data: bytes) -> None:
    assert enc._quotable(data) is _quotable_by_definition(data)


@given(_octets)
def test_astring_is_the_definition(data: bytes) -> None:
    assert enc.astring(data) == _astring_by_definition(data)


@given(_octets)
def test_string_is_a_quoted_string_or_a_literal(data: bytes) -> None:
    out = enc.string(data)
    raw = data.replace(b"\x00", b"\x80")
    if _quotable_by_definition(raw):
        assert out == b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    else:
        assert out == b"{%d}\r\n" % len(raw) + raw
