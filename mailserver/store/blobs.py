"""Large encrypted objects behind a small interface.

``LocalBlobStore`` keeps one file per blob, written to a temporary name, fsync'd, renamed and
the folder fsync'd, so a blob is durable before the database row that points at it commits.
Callers encrypt before ``put``: a blob store never sees plaintext. An S3-style store can implement
the same :class:`BlobStore` protocol.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from mailserver.errors import NotFound, StorageFull, StoreError
from mailserver.files import atomic_write

__all__ = ["BlobStore", "LocalBlobStore", "new_blob_key"]


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
"""Write errors meaning "no space left" (disk full, quota exceeded)."""


def new_blob_key() -> str:
    return secrets.token_hex(16)


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def put_chunks(self, key: str, chunks: AsyncIterator[bytes]) -> int: ...

    def read_chunks(self, key: str, size: int = ...) -> AsyncIterator[bytes]: ...


READ_SLICE = 256 * 1024


class LocalBlobStore:
    """Blobs as files under ``root/ab/cd/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise StoreError("invalid blob key")
        return self.root / key[:2] / key[2:4] / key

    def _put_sync(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        atomic_write(path, data)

    async def put(self, key: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._put_sync, key, data)
        except OSError as exc:
            if exc.errno in _FULL:
                raise StorageFull(f"blob write failed: {exc.strerror}") from exc
            raise StoreError(f"blob write failed: {exc.strerror}") from exc

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound("blob not found") from None
        except OSError as exc:
            raise StoreError(f"blob read failed: {exc.strerror}") from exc

    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless a file can be created in the blob folder."""
        probe = self.root / f".ready-{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"blob folder not writable: {exc.strerror}") from exc

    def files_older_than(self, cutoff: float) -> list[str]:
        """Keys of the blob files last modified before ``cutoff`` (a Unix time)."""
        out = []
        for path in self.root.glob("??/??/*"):
            name = path.name
            if len(name) == 32 and all(c in "0123456789abcdef" for c in name):
                try:
                    if path.stat().st_mtime < cutoff:
                        out.append(name)
                except FileNotFoundError:
                    continue
        return out

    def remove_temp_older_than(self, cutoff: float, *, dry_run: bool = False) -> int:
        """Remove the temporary files of writes cut short (``.<key>.*.tmp``, a crash during
        ``put``) last modified before ``cutoff``; returns how many."""
        count = 0
        for path in self.root.glob("??/??/.*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    if not dry_run:
                        path.unlink()
                    count += 1
            except FileNotFoundError:
                continue
        return count

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink, True)
        except OSError as exc:
            raise StoreError(f"blob delete failed: {exc.strerror}") from exc

    # -- large blobs, written and read in pieces (prepared exports) ------------------------

    def _open_temp(self, key: str) -> tuple[BinaryIO, Path]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        return os.fdopen(fd, "wb"), Path(tmp)

    @staticmethod
    def _finish(f: BinaryIO, tmp: Path, path: Path) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        tmp.replace(path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def put_chunks(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Write a blob from pieces (one in memory at a time), durably; its size. Nothing
        is left under ``key`` if the pieces fail."""
        f, tmp = await asyncio.to_thread(self._open_temp, key)
        total = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(f.write, chunk)
                total += len(chunk)
            await asyncio.to_thread(self._finish, f, tmp, self._path(key))
        except BaseException as exc:
            f.close()
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                full = exc.errno in _FULL
                raise (StorageFull if full else StoreError)(
                    f"blob write failed: {exc.strerror}") from exc
            raise
        return total

    async def read_chunks(self, key: str, size: int = READ_SLICE) -> AsyncIterator[bytes]:
        """A blob in pieces of ``size`` bytes."""
        try:
            f = await asyncio.to_thread(self._path(key).open, "rb")
        except FileNotFoundError:
            raise NotFound("blob not found") from None
        try:
            while chunk := await asyncio.to_thread(f.read, size):
                yield chunk
        finally:
            f.close()
