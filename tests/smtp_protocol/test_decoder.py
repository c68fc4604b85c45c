"""Sans-I/O DataDecoder: terminator, un-stuffing, size limit, smuggling sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.smtp.protocol import DataDecoder, find_ambiguous_dot

from .conftest import stuff

# Content built from the tokens that matter to the decoder.
TOKENS = [b"\r\n", b"\r", b"\n", b".", b"..", b"a", b"\x00", b"\xff", b" ", b"\r\n.\r\n"]


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from(TOKENS), max_size=60))
    body = b"".join(parts)
    # Mail data always ends with CRLF (or is empty): the terminator's CRLF belongs to it.
    return body + b"\r\n" if draw(st.booleans()) or body else b""


def feed_chunks(decoder: DataDecoder, data: bytes, cuts: list[int]) -> bytes:
    rest = b""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:], strict=False):
        if decoder.done:
            rest += data[start:end]
            continue
        rest += decoder.feed(data[start:end])
    return rest


@settings(max_examples=400, deadline=None)
@given(messages(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=30), st.binary())
def test_any_chunking_round_trips(content: bytes, cuts: list[int], after: bytes) -> None:
    wire = stuff(content)
    decoder = DataDecoder()
    rest = feed_chunks(decoder, wire + after, cuts)
    assert decoder.done
    assert decoder.content() == content
    assert rest == after
    assert decoder.received == len(wire) - 3


@settings(max_examples=200, deadline=None)
@given(messages(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
       st.integers(min_value=0, max_value=400))
def test_size_limit_is_on_stuffed_bytes(content: bytes, cuts: list[int], limit: int) -> None:
    wire = stuff(content)
    decoder = DataDecoder(size_limit=limit)
    rest = feed_chunks(decoder, wire + b"QUIT\r\n", cuts)
    assert decoder.done and rest == b"QUIT\r\n"
    assert decoder.too_big == (len(wire) - 3 > limit)
    if decoder.too_big:
        with pytest.raises(RuntimeError):
            decoder.content()
    else:
        assert decoder.content() == content


def test_over_limit_buffer_stays_small() -> None:
    decoder = DataDecoder(size_limit=1000)
    decoder.feed(b"x" * 999 + b"\r")
    assert decoder.buffered == 1002 and not decoder.too_big
    for _ in range(1000):
        decoder.feed(b"x" * 999 + b"\r")
        assert decoder.buffered <= 4
    assert decoder.too_big and not decoder.done
    assert decoder.feed(b"\n.\r\nRSET\r\n") == b"RSET\r\n"
    assert decoder.done


@pytest.mark.parametrize(
    ("wire", "content"),
    [
        pytest.param(b".\r\n", b"", id="empty"),
        pytest.param(b"..\r\n.\r\n", b".\r\n", id="first-line-dot"),
        pytest.param(b"...\r\n.\r\n", b"..\r\n", id="first-line-two-dots"),
        pytest.param(b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n", id="inner-dot-line"),
        pytest.param(b".x\r\n.\r\n", b"x\r\n", id="unstuffed-dot-line-loses-dot"),
        pytest.param(b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n", id="bare-lf-dot-is-data"),
        pytest.param(b"a\r.\rb\r\n.\r\n", b"a\r.\rb\r\n", id="bare-cr-dot-is-data"),
        pytest.param(b"a\n.\r\nb\r\n.\r\n", b"a\n.\r\nb\r\n", id="lf-dot-crlf-is-data"),
        pytest.param(b"x" * 100_000 + b"\r\n.\r\n", b"x" * 100_000 + b"\r\n", id="long-line"),
    ],
)
def test_examples(wire: bytes, content: bytes) -> None:
    decoder = DataDecoder()
    assert decoder.feed(wire) == b""
    assert decoder.done
    assert decoder.content() == content


@pytest.mark.parametrize(
    ("data", "ambiguous"),
    [
        pytest.param(b"a\n.\nb", True, id="lf-dot-lf"),
        pytest.param(b"a\r.\rb", True, id="cr-dot-cr"),
        pytest.param(b"a\n.\r\nb", True, id="lf-dot-crlf"),
        pytest.param(b"a\r\n.\nb", True, id="crlf-dot-lf"),
        pytest.param(b"a\r\n..\r\nb\r\n", False, id="stuffed-dot-line"),
        pytest.param(b"a\nb\rc\r\n.x\r\n", False, id="bare-newlines-without-dot-line"),
    ],
)
def test_ambiguous_dot_lines(data: bytes, ambiguous: bool) -> None:
    assert (find_ambiguous_dot(b"\r\n" + data) >= 0) is ambiguous
    decoder = DataDecoder()
    decoder.feed(data + b"\r\n.\r\n")
    assert decoder.ambiguous is ambiguous


def test_first_line_bare_lf_dot_is_ambiguous() -> None:
    decoder = DataDecoder()
    decoder.feed(b".\nMAIL FROM:<x@y>\r\n.\r\n")
    assert decoder.done and decoder.ambiguous


def test_feed_after_done_raises() -> None:
    decoder = DataDecoder()
    decoder.feed(b".\r\n")
    with pytest.raises(RuntimeError):
        decoder.feed(b"x")
