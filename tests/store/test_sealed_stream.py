"""The sealed stream of prepared exports: a round trip whatever the reader's piece size, every
tampering refused (a table), and memory bounded by one piece both ways."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import AsyncIterator, Callable

import pytest

from mailserver.store.crypto import DecryptError, new_data_key
from mailserver.store.sealed_stream import open_stream, seal_stream

KEY = new_data_key()
AAD = b"export-zip:1"


async def _pieces(*pieces: bytes) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


async def _sealed(*pieces: bytes) -> bytes:
    return b"".join([r async for r in seal_stream(KEY, AAD, _pieces(*pieces))])


async def _open(data: bytes, size: int = 7, key: bytes = KEY, aad: bytes = AAD) -> bytes:
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join([p async for p in open_stream(key, aad, _pieces(*chunks))])


@pytest.mark.parametrize("pieces", [(), (b"",), (b"a",), (b"abc", b"", b"de" * 1000)])
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
async def test_round_trip(pieces: tuple[bytes, ...], size: int) -> None:
    assert await _open(await _sealed(*pieces), size) == b"".join(pieces)


def _records(data: bytes) -> list[bytes]:
    out = []
    while data:
        n = 4 + int.from_bytes(data[:4], "big")
        out.append(data[:n])
        data = data[n:]
    return out


TAMPERING: dict[str, Callable[[bytes], bytes]] = {
    "cut after a record": lambda d: b"".join(_records(d)[:2]),
    "cut inside a record": lambda d: d[:-5],
    "records swapped": lambda d: b"".join([_records(d)[1], _records(d)[0], *_records(d)[2:]]),
    "a record dropped": lambda d: b"".join([_records(d)[0], *_records(d)[2:]]),
    "a byte flipped": lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:],
    "a record appended": lambda d: d + _records(d)[0],
    "huge length": lambda d: b"\xff\xff\xff\xff" + d,
    "empty": lambda d: b"",
}


@pytest.mark.parametrize("name", list(TAMPERING))
async def test_tampering_is_refused(name: str) -> None:
    data = await _sealed(b"un", b"deux", b"trois")
    with pytest.raises(DecryptError):
        await _open(TAMPERING[name](data))


async def test_wrong_key_or_stream() -> None:
    data = await _sealed(b"un")
    with pytest.raises(DecryptError):
        await _open(data, key=new_data_key())
    with pytest.raises(DecryptError):
        await _open(data, aad=b"export-zip:2")


async def test_memory_is_bounded() -> None:
    """64 MiB through seal then open, 256 KiB at a time: the peak stays near a few pieces."""
    piece = os.urandom(256 * 1024)

    async def source() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield piece

    tracemalloc.start()
    try:
        total = 0
        async for p in open_stream(KEY, AAD, seal_stream(KEY, AAD, source())):
            total += len(p)
            await asyncio.sleep(0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 256 * len(piece)
    assert peak < 4 * 1024 * 1024, peak
