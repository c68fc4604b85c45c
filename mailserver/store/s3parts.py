"""Pieces of any size regrouped into parts of a fixed size (the parts of an S3 upload)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

__all__ = ["rechunk", "rechunk_bytes", "chain"]


async def rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """``chunks`` as parts of exactly ``size`` bytes, the last one shorter (never empty unless
    nothing came at all: then no part)."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


async def rechunk_bytes(data: bytes, size: int) -> AsyncIterator[bytes]:
    """``data`` in parts of ``size`` bytes (copied one part at a time)."""
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield bytes(view[i:i + size])


async def chain(first: Iterable[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The parts already taken from an iterator, then the rest of it."""
    for part in first:
        yield part
    async for part in rest:
        yield part
