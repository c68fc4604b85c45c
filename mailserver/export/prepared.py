"""The export prepared in the background, for large spaces ("Préparer l'archive").

Theory of operation: a space of ``threshold`` bytes or more (messages and documents) is not
streamed while the patient waits; :meth:`PreparedExports.request` records the request and
enqueues a ``prepare_export`` job in the same transaction. The job builds the same ZIP as the
streamed download (:class:`~mailserver.export.archive.AccountExport`), seals it piece by piece
under a fresh content key (:mod:`mailserver.store.sealed_stream`; the content key is sealed
under the account's data key, as the mail store does for messages) into a blob, marks the
row ready, enqueues an ``expire_export`` job ``keep`` later and sends the patient a notice
(no health content). The page then offers the download, decrypted as it streams. Memory
holds one piece at a time, both ways. The expiry job deletes the row and the blob; closing
makes the archive unreadable (the data key moves to the account's archive), deleting or
purging the space deletes it (:func:`mailserver.store.prepared_exports.erase_account_in`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.directory.service import AccountInfo, Directory
from mailserver.errors import NotFound, StoreError
from mailserver.export.archive import AccountExport
from mailserver.store import prepared_exports as rows
from mailserver.store.blobs import BlobStore, new_blob_key
from mailserver.store.crypto import new_data_key
from mailserver.store.db import Database
from mailserver.store.jobs import JobInfo, Jobs
from mailserver.store.keys import KeyManager
from mailserver.store.sealed_stream import open_stream, seal_stream

__all__ = ["PreparedExports", "PreparedStatus", "JOB_PREPARE_EXPORT", "JOB_EXPIRE_EXPORT"]

log = logging.getLogger(__name__)

JOB_PREPARE_EXPORT = "prepare_export"
JOB_EXPIRE_EXPORT = "expire_export"

Notify = Callable[[int, datetime], Awaitable[None]]
"""Tells the patient (account id) their archive is ready, until when."""


@dataclass(frozen=True)
class PreparedStatus:
    requested_at: datetime
    ready_at: datetime | None
    """None while the job is preparing it."""
    expires_at: datetime | None
    size: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aad(account_id: int, kind: str) -> bytes:
    return f"export-{kind}:{account_id}".encode()


class PreparedExports:
    """Requests, builds, serves and expires the prepared archives (module docstring)."""

    def __init__(self, db: Database, keys: KeyManager, blobs: BlobStore, export: AccountExport,
                 directory: Directory, *, threshold: int, keep: timedelta,
                 notify: Notify | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.db, self.keys, self.blobs = db, keys, blobs
        self.export, self.directory = export, directory
        self.threshold, self.keep = threshold, keep
        self.notify = notify
        self.clock = clock

    async def large(self, account: AccountInfo) -> bool:
        """Whether the space is worth preparing in the background."""
        return await self.export.estimated_size(account) >= self.threshold

    async def status(self, account_id: int) -> PreparedStatus | None:
        """The account's request or archive (None: none, or expired)."""
        async with self.db.session() as s:
            row = await rows.get_in(s, account_id)
        if row is None or (row.expires_at is not None and row.expires_at <= self.clock()):
            return None
        return PreparedStatus(row.requested_at, row.ready_at, row.expires_at, row.size)

    async def request(self, account: AccountInfo) -> PreparedStatus:
        """Ask for an archive (again: a new one replaces the previous)."""
        current = await self.status(account.id)
        if current is not None and current.ready_at is None:
            return current  # already being prepared
        at = self.clock()

        async def op(s: AsyncSession) -> str | None:
            old = await rows.ask_in(s, account.id, at)
            Jobs.enqueue_in(s, JOB_PREPARE_EXPORT, account_id=account.id)
            return old

        old = await self.db.write(op)
        await self._delete_blob(old)
        return PreparedStatus(at, None, None, 0)

    async def handle_prepare(self, job: JobInfo) -> None:
        """The ``prepare_export`` job: build, seal and store the archive, then notify."""
        if job.account_id is None:
            return
        async with self.db.session() as s:
            row = await rows.get_in(s, job.account_id)
        account = await self.directory.get(job.account_id)
        if row is None or row.ready_at is not None or account.status != "open":
            return
        content_key, key = new_data_key(), new_blob_key()
        size = await self.blobs.put_chunks(key, seal_stream(
            content_key, _aad(account.id, "zip"), self.export.stream(account, self.clock())))
        sealed_key = await self.keys.seal(account.id, content_key, _aad(account.id, "key"))
        at = self.clock()
        expires = at + self.keep

        async def op(s: AsyncSession) -> bool:
            done = await rows.ready_in(s, account.id, row.requested_at, blob_key=key,
                                       content_key_enc=sealed_key, size=size, at=at,
                                       expires_at=expires)
            if done:
                Jobs.enqueue_in(s, JOB_EXPIRE_EXPORT, account_id=account.id,
                                delay=max(0.0, (expires - _utcnow()).total_seconds()))
            return done

        if not await self.db.write(op):  # replaced or erased meanwhile
            await self._delete_blob(key)
            return
        log.info("export: archive prepared (%d bytes)", size)
        if self.notify is not None:
            await self.notify(account.id, expires)

    async def stream(self, account: AccountInfo) -> AsyncIterator[bytes]:
        """The ready archive, decrypted piece by piece. Raises NotFound when there is none."""
        async with self.db.session() as s:
            row = await rows.get_in(s, account.id)
        if row is None or row.blob_key is None or row.content_key_enc is None \
                or row.expires_at is None or row.expires_at <= self.clock():
            raise NotFound("no prepared archive")
        content_key = await self.keys.unseal(account.id, row.content_key_enc,
                                             _aad(account.id, "key"))
        async for piece in open_stream(content_key, _aad(account.id, "zip"),
                                       self.blobs.read_chunks(row.blob_key)):
            yield piece

    async def handle_expire(self, job: JobInfo) -> None:
        """The ``expire_export`` job: delete the archives whose time is over."""
        await self.expire_due()

    async def expire_due(self, as_of: datetime | None = None) -> int:
        """Delete the archives expired at ``as_of``; how many."""
        moment = as_of or self.clock()

        async def op(s: AsyncSession) -> list[str | None]:
            return [await rows.drop_in(s, a) for a in await rows.expired_in(s, moment)]

        keys = await self.db.write(op)
        for key in keys:
            await self._delete_blob(key)
        return len(keys)

    async def _delete_blob(self, key: str | None) -> None:
        if key is None:
            return
        try:
            await self.blobs.delete(key)
        except StoreError:
            log.warning("export: a prepared archive's blob could not be deleted")
