"""Sealing a long byte stream piece by piece (a prepared export of several GB), so that neither
writing nor reading it holds more than one piece in memory.

Format: a sequence of records, each ``length (4 bytes, big-endian) || seal(piece)``. Each
piece is sealed (AES-256-GCM, :func:`mailserver.store.crypto.seal`) with associated data
``aad || index (8 bytes) || final (1 byte)``: records cannot be reordered, dropped, replayed
from another stream or cut short (the last record says it is the last; a stream that ends
without it is refused), and an empty stream still has its one final record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from mailserver.store.crypto import DecryptError, seal, unseal

__all__ = ["seal_stream", "open_stream", "MAX_RECORD"]

MAX_RECORD = 8 * 1024 * 1024
"""The largest sealed record a reader accepts (a writer's pieces stay far below)."""


def _aad(aad: bytes, index: int, final: bool) -> bytes:
    return aad + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _record(key: bytes, aad: bytes, index: int, piece: bytes, final: bool) -> bytes:
    sealed = seal(key, piece, _aad(aad, index, final))
    return len(sealed).to_bytes(4, "big") + sealed


async def seal_stream(key: bytes, aad: bytes, pieces: AsyncIterator[bytes]
                      ) -> AsyncIterator[bytes]:
    """The sealed records of ``pieces`` (one piece held back to know which one is last)."""
    index = 0
    held: bytes | None = None
    async for piece in pieces:
        if held is not None:
            yield _record(key, aad, index, held, False)
            index += 1
        held = piece
    yield _record(key, aad, index, held or b"", True)


async def open_stream(key: bytes, aad: bytes, raw: AsyncIterator[bytes]
                      ) -> AsyncIterator[bytes]:
    """The pieces sealed by :func:`seal_stream`, from its bytes in pieces of any size.
    Raises :class:`DecryptError` when tampered with or cut short."""
    buf = bytearray()
    index = 0
    final = False
    async for chunk in raw:
        buf += chunk
        while len(buf) >= 4:
            size = int.from_bytes(buf[:4], "big")
            if size > MAX_RECORD:
                raise DecryptError("sealed record too large")
            if len(buf) < 4 + size:
                break
            if final:
                raise DecryptError("data after the final record")
            record = bytes(buf[4:4 + size])
            del buf[:4 + size]
            try:
                piece = unseal(key, record, _aad(aad, index, False))
            except DecryptError:
                piece = unseal(key, record, _aad(aad, index, True))
                final = True
            index += 1
            yield piece
    if buf or not final:
        raise DecryptError("sealed stream cut short")
