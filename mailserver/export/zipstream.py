"""A ZIP archive written as a stream of chunks (stdlib ``zipfile`` on a non-seekable sink).

Theory of operation
-------------------
``zipfile`` writes to any object with ``write``; when the object cannot ``tell``/``seek`` it
puts each member's sizes and CRC in a data descriptor after the data (APPNOTE 4.3.9) instead
of going back to the local header. So members can be produced one slice at a time and the
bytes handed on as soon as they are written: :class:`ZipStream` collects what ``zipfile``
writes and gives it back from each call. A member's size is declared up front (the caller
knows it), which makes ``zipfile`` choose zip64 for members over 4 GiB; the central
directory switches to zip64 by itself past 65,535 members or 4 GiB of archive.

Only the caller's current slice and the compressor's state are in memory, whatever the
archive's size. Compression (deflate) is CPU work: the caller may run :meth:`write` in a
thread (``zlib`` releases the GIL), never two calls at once.
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from typing import IO

__all__ = ["ZipStream", "SLICE", "STORED_TYPES", "compressible"]

SLICE = 1 << 20
"""Bytes of a member written per :meth:`ZipStream.write` call by callers that slice."""

STORED_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/gif",
                          "image/webp", "application/zip", "application/gzip",
                          "video/mp4", "audio/mpeg"})
"""Content types already compressed: stored as they are (deflating them costs CPU for
nothing)."""


def compressible(content_type: str) -> bool:
    """Whether a member of this content type is worth deflating."""
    return content_type.split(";")[0].strip().lower() not in STORED_TYPES


class _Sink:
    """Collects what ``zipfile`` writes; no ``tell``/``seek``: zipfile streams."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class ZipStream:
    """One archive: ``begin`` a member, ``write`` its bytes, ``end`` it; ``close`` at the end.
    Every call returns the archive bytes it produced (possibly empty)."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", allowZip64=True)
        self._member: IO[bytes] | None = None

    def begin(self, name: str, size: int, when: datetime, *, compress: bool) -> bytes:
        """Start member ``name`` of ``size`` bytes, dated ``when`` (local time)."""
        if self._member is not None:
            raise RuntimeError("a member is still open")
        info = zipfile.ZipInfo(name, _dos_time(when))
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.file_size = size
        info.external_attr = 0o644 << 16
        self._member = self._zip.open(info, "w")
        return self._sink.drain()

    def write(self, data: bytes | memoryview) -> bytes:
        if self._member is None:
            raise RuntimeError("no member open")
        self._member.write(data)
        return self._sink.drain()

    def end(self) -> bytes:
        if self._member is None:
            raise RuntimeError("no member open")
        self._member.close()
        self._member = None
        return self._sink.drain()

    def add(self, name: str, data: bytes, when: datetime, *, compress: bool) -> bytes:
        """A whole (small) member at once."""
        return self.begin(name, len(data), when, compress=compress) + self.write(data) \
            + self.end()

    def close(self) -> bytes:
        """The central directory: the archive's last bytes."""
        self._zip.close()
        return self._sink.drain()


def _dos_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    """ZIP stores local times from 1980 to 2107 (MS-DOS format)."""
    year = min(max(when.year, 1980), 2107)
    return (year, when.month, when.day, when.hour, when.minute, when.second)
