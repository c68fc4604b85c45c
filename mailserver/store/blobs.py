"""Large encrypted objects behind a small interface.

``LocalBlobStore`` keeps one file per blob, written to a temporary name, fsync'd, renamed and
the folder fsync'd, so a blob is durable before the database row that points at it commits.
Callers encrypt before ``put``: a blob store never sees plaintext. ``s3blobs.S3BlobStore`` keeps
them in an S3 bucket instead (``[store] blob_url``); both are a :class:`BlobBackend`, chosen and
owned by the composition root. The stores below it see only the data path, :class:`BlobStore`.
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

__all__ = ["BlobStore", "BlobBackend", "LocalBlobStore", "new_blob_key", "check_key",
           "is_blob_name"]


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
"""Write errors meaning "no space left" (disk full, quota exceeded)."""


_HEX = frozenset("0123456789abcdef")


def new_blob_key() -> str:
    return secrets.token_hex(16)


def check_key(key: str) -> str:
    """``key`` if it is a blob key (lowercase hex), else :class:`StoreError`."""
    if not key or not set(key) <= _HEX:
        raise StoreError("invalid blob key")
    return key


def is_blob_name(name: str) -> bool:
    """Whether ``name`` is a whole blob key (what ``new_blob_key`` makes)."""
    return len(name) == 32 and set(name) <= _HEX


class BlobStore(Protocol):
    """The data path: what the mail store, the documents, closing and exports use. Every
    failure is a :class:`StoreError` (:class:`NotFound` for a missing blob)."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def put_chunks(self, key: str, chunks: AsyncIterator[bytes]) -> int: ...

    def read_chunks(self, key: str, size: int = ...) -> AsyncIterator[bytes]: ...


class BlobBackend(BlobStore, Protocol):
    """A blob store with what its operator needs: the readiness probe, the orphan sweep's
    listing and the release of its connections (the composition root owns it)."""

    async def check_ready(self) -> None:
        """Raise :class:`StoreError` unless blobs can be written now."""

    def old_keys(self, cutoff: float) -> AsyncIterator[list[str]]:
        """Keys of the blobs last written before ``cutoff`` (a Unix time), in batches (a
        bucket may hold hundreds of millions)."""

    async def remove_stale_temp(self, cutoff: float, *, dry_run: bool = False) -> int:
        """Remove the leftovers of writes cut short, begun before ``cutoff``; how many."""

    async def close(self) -> None:
        """Release connections; idempotent."""


READ_SLICE = 256 * 1024
SWEEP_BATCH = 1000
"""Keys the orphan sweep checks against the rows at a time."""


class LocalBlobStore:
    """Blobs as files under ``root/ab/cd/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        check_key(key)
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
            if is_blob_name(name):
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

    async def check_ready(self) -> None:
        await asyncio.to_thread(self.check_writable)

    async def old_keys(self, cutoff: float) -> AsyncIterator[list[str]]:
        keys = await asyncio.to_thread(self.files_older_than, cutoff)
        for i in range(0, len(keys), SWEEP_BATCH):
            yield keys[i:i + SWEEP_BATCH]

    async def remove_stale_temp(self, cutoff: float, *, dry_run: bool = False) -> int:
        return await asyncio.to_thread(self.remove_temp_older_than, cutoff, dry_run=dry_run)

    async def close(self) -> None:
        return None

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
