"""Hypothesis properties of the receiver, encoder, seqset and mUTF-7."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap.encoder import encode_value, string
from mailserver.imap.lexer import Cursor
from mailserver.imap.parser import Invalid, NeedLiteral, Receiver
from mailserver.imap.seqset import SeqSet, format_uid_set
from mailserver.imap.utf7 import decode_mutf7, encode_mutf7

STREAM = (
    b"a1 LOGIN {3}\r\nbob {2+}\r\npw\r\n"
    b"a2 SELECT \"INBOX\" (CONDSTORE)\r\n"
    b"a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]<0.10>)\r\n"
    b"a4 APPEND Sent (\\Seen) {5+}\r\nhello\r\n"
    b"a5 SEARCH OR FROM \"x\" NOT SEEN\r\n"
    b"a6 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n"
    b"a7 NOOP\r\n"
)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def run(data: bytes, cuts: list[int]) -> list[object]:
    r = Receiver()
    events: list[object] = []
    for piece in chunks(data, cuts):
        events += r.feed(piece)
    return [e for e in events if not isinstance(e, NeedLiteral)]


@given(st.lists(st.integers(0, len(STREAM)), max_size=8))
def test_any_split_gives_same_commands(cuts: list[int]) -> None:
    whole = run(STREAM, [])
    assert len(whole) == 7 and not any(isinstance(e, Invalid) for e in whole)
    assert run(STREAM, cuts) == whole


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_arbitrary_bytes_never_raise_and_stay_bounded(pieces: list[bytes]) -> None:
    r = Receiver(max_line=64, max_literal=128, max_command=256)
    for piece in pieces:
        r.feed(piece)
        # bounded: a partial line, or a command being framed, never beyond the limits
        assert r.buffered <= 256 + 64 + 200
        if r.paused:
            r.resume()


ALPHABET = st.sampled_from([b"a ", b"NOOP", b"{", b"}", b"+", b"\r\n", b"\n", b"3", b"99",
                            b"(", b")", b'"', b"\\", b"FETCH 1 ", b"BODY[", b"]", b"~", b"*",
                            b"SEARCH ", b"NOT ", b"IDLE", b"DONE", b"AUTHENTICATE X", b"\xff"])


@settings(max_examples=300)
@given(st.lists(ALPHABET, max_size=60), st.lists(st.integers(0, 400), max_size=6))
def test_imap_like_garbage_never_raises(tokens: list[bytes], cuts: list[int]) -> None:
    data = b"".join(tokens)
    r = Receiver(max_line=64, max_literal=50, max_command=200)
    for piece in chunks(data, cuts):
        r.feed(piece)
        if r.paused:
            r.start_idle("x")
        assert r.buffered <= 200 + 64 + len(data)


@given(st.binary(max_size=300))
def test_string_quoting_round_trips(data: bytes) -> None:
    encoded = string(data)
    assert Cursor(encoded).string() == data.replace(b"\x00", b"\x80")  # no NUL: RFC 3501 9
    if b"\r" in data or b"\n" in data or any(b >= 0x80 for b in data):
        assert encoded.startswith(b"{")


@given(st.recursive(st.none() | st.integers(0, 2**32) | st.binary(max_size=20),
                    lambda inner: st.lists(inner, max_size=4), max_leaves=20))
def test_encode_value_is_balanced(value: object) -> None:
    out = encode_value(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        assert out.startswith(b"(") and out.endswith(b")")


@given(st.text(max_size=30))
def test_mutf7_round_trips(name: str) -> None:
    name = name.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert decode_mutf7(encode_mutf7(name)) == name


@given(st.sets(st.integers(1, 300), max_size=40))
def test_seqset_compress_round_trips(nums: set[int]) -> None:
    text = format_uid_set(nums)
    if nums:
        assert list(SeqSet.parse(text).iter(300)) == sorted(nums)
    else:
        assert text == ""
