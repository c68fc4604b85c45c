"""``DataDecoder`` (SMTP DATA, RFC 5321 4.1.1.4, 4.5.2) against a one-line reference.

The first three bytes choose the size limit, the header limit and the read size; the rest is
fed in chunks. Whatever the chunking, the decoder must agree with the reference: the end
marker is the first CRLF.CRLF after the virtual CRLF, the content is un-stuffed, the limits
are counted on the stuffed bytes.
"""

from __future__ import annotations

from mailserver.smtp.protocol import DataDecoder, find_ambiguous_dot

_END = b"\r\n.\r\n"


def _header_size(stuffed: bytes, end: int) -> int:
    """Reference header section size (stuffed bytes, virtual CRLF excluded)."""
    hits = [i for i in (stuffed.find(b"\n\n", 0, end), stuffed.find(b"\n\r\n", 0, end)) if i >= 0]
    return min(hits) - 1 if hits else end - 2


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    if len(data) < 3:
        return
    size_limit = None if data[0] == 255 else data[0] * 4
    header_limit = None if data[1] == 255 else data[1] * 2
    chunk = data[2] % 64 + 1
    body = data[3:]
    decoder = DataDecoder(size_limit, header_limit)
    rest = b""
    pos = 0
    while pos < len(body) and not decoder.done:
        rest = decoder.feed(body[pos:pos + chunk])
        pos += chunk
        if not decoder.done and size_limit is not None:
            assert decoder.buffered <= size_limit + 2 * chunk + 8, "buffer over the limit"
    stuffed = b"\r\n" + body
    end = stuffed.find(_END)
    if end < 0:
        assert not decoder.done
        return
    assert decoder.done
    assert rest + body[pos:] == stuffed[end + len(_END):]
    assert decoder.received == end
    assert decoder.too_big == (size_limit is not None and end > size_limit)
    if decoder.too_big:
        return
    message = stuffed[: end + 2]
    expect_header = header_limit is not None and _header_size(message, len(message)) > header_limit
    assert decoder.header_too_big == expect_header
    if decoder.header_too_big:
        return
    assert decoder.ambiguous == (find_ambiguous_dot(message) >= 0)
    assert decoder.content() == message.replace(b"\r\n.", b"\r\n")[2:]
