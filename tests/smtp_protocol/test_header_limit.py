"""Header section limit of the DATA reader (issue 9): sans-I/O properties and real sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.smtp.protocol import DataDecoder

from .conftest import Server, ServerFactory, stuff
from .test_decoder import feed_chunks, messages

KIB = 1024


def header_size(stuffed: bytes) -> int:
    """Oracle: bytes up to and including the LF before the first empty line, else all."""
    data = b"\r\n" + stuffed
    hits = [i for i in (data.find(b"\n\n"), data.find(b"\n\r\n")) if i >= 0]
    return min(hits) - 1 if hits else len(stuffed)


@settings(max_examples=400, deadline=None)
@given(messages(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
       st.integers(min_value=0, max_value=200), st.sampled_from([b"", b"QUIT\r\n\r\n\n\n"]))
def test_header_limit_on_any_chunking(content: bytes, cuts: list[int], limit: int,
                                      after: bytes) -> None:
    wire = stuff(content)
    decoder = DataDecoder(header_limit=limit)
    rest = feed_chunks(decoder, wire + after, cuts)
    assert decoder.done and rest == after
    assert decoder.received == len(wire) - 3
    assert decoder.header_too_big == (header_size(wire[:-3]) > limit)
    assert not decoder.too_big
    if decoder.header_too_big:
        with pytest.raises(RuntimeError):
            decoder.content()
    else:
        assert decoder.content() == content


@settings(max_examples=200, deadline=None)
@given(messages(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
       st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=200))
def test_header_and_size_limits_together(content: bytes, cuts: list[int], size_limit: int,
                                         header_limit: int) -> None:
    wire = stuff(content)
    decoder = DataDecoder(size_limit=size_limit, header_limit=header_limit)
    assert feed_chunks(decoder, wire + b"RSET\r\n", cuts) == b"RSET\r\n"
    too_big = len(wire) - 3 > size_limit
    assert decoder.too_big == too_big
    if not too_big:
        assert decoder.header_too_big == (header_size(wire[:-3]) > header_limit)
    if not decoder.too_big and not decoder.header_too_big:
        assert decoder.content() == content


@pytest.mark.parametrize(("data", "size"), [
    pytest.param(b"\r\nbody\r\n", 0, id="empty-header-section"),
    pytest.param(b"A: b\r\n\r\nbody\r\n", 6, id="crlf"),
    pytest.param(b"A: b\n\nbody\n", 5, id="bare-lf"),
    pytest.param(b"A: b\r\nC: d\r\n", 12, id="no-body"),
    pytest.param(b"A: b\r\n\r\n", 6, id="empty-body"),
])
def test_header_section_examples(data: bytes, size: int) -> None:
    assert header_size(data) == size
    for limit, refused in ((size, False), (size - 1, True)):
        if limit < 0:
            continue
        decoder = DataDecoder(header_limit=limit)
        decoder.feed(stuff(data if data.endswith(b"\r\n") else data + b"\r\n"))
        assert decoder.done and decoder.header_too_big == refused


def test_ten_megabytes_of_headers_are_not_buffered() -> None:
    decoder = DataDecoder(size_limit=25 * 1024 * KIB, header_limit=100 * KIB)
    line = b"X-Filler: " + b"h" * 88 + b"\r\n"
    chunk = line * 2600  # ~256 KiB
    for _ in range(40):  # ~10 MiB of header lines, no empty line
        decoder.feed(chunk)
        assert decoder.buffered <= len(chunk) + 2 * KIB
    assert decoder.header_too_big and not decoder.too_big and not decoder.done
    assert decoder.feed(b".\r\nMAIL FROM:<a@b.c>\r\n") == b"MAIL FROM:<a@b.c>\r\n"
    assert decoder.done and decoder.buffered == 0


def _message(header_bytes: int, body: bytes = b"body\r\n") -> bytes:
    fill = b"".join(b"X-Filler-%06d: %s\r\n" % (i, b"h" * 80)
                    for i in range(header_bytes // 100 + 1))
    return b"Subject: t\r\n" + fill + b"\r\n" + body


async def test_large_header_refused_and_connection_stays_usable(
        make_server: ServerFactory) -> None:
    server: Server = await make_server(header_size_limit=100 * KIB)
    client = await server.client()
    small = _message(1 * KIB)
    big_body = _message(1 * KIB, (b"y" * 998 + b"\r\n") * 2000)  # ~2 MB body, small header
    for content, code in ((small, 250), (_message(200 * KIB), 552), (big_body, 250),
                          (_message(10 * 1024 * KIB, b""), 552), (small, 250)):
        await client.envelope()
        await client.send(stuff(content))
        reply = await client.reply(timeout=30)
        assert reply[0] == code, reply
        if code == 552:
            assert reply[1].startswith("552 5.3.4 Message header too large")
    assert [e.content for e in server.handler.envelopes] == [small, big_body, small]
    assert (await client.cmd("QUIT"))[0] == 221
    await client.close()
