"""Archives of closed accounts: the data key moved out of ``mailbox_keys``, sealed under an
archive key of its own, and the deletion requests.

Theory of operation (see docs/ARCHITECTURE.md, "archive by key move"): closing moves the
account's wrapped data key out of ``mailbox_keys`` into ``account_archives``: a fresh random
archive key wrapped by the master key (associated data ``archivekey:<account>``), and the data
key wrapped by that archive key (``archive-datakey:<account>``). No data is copied; the
``KeyManager`` finds no key for the account, so no normal path can read it. Reactivating moves
the key back. Both moves bump ``key_generation`` in the same transaction, so every process
drops its cached data keys at once (as after a shredding). Deleting an archive replaces its
keys by a fresh, empty data key (the account's identity is re-sealed under it by the caller)
and records ``deleted_at``; purging deletes the row.

A deletion asked for while the account is still open is a ``deletion_requests`` row, moved
into the archive when the account closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.errors import NotFound
from mailserver.store.crypto import MasterKeyring, new_data_key, seal, unseal
from mailserver.store.models import Base, KeyGeneration, MailboxKey

__all__ = ["AccountArchive", "DeletionRequest", "ArchiveInfo", "Archives",
           "bump_generation_in", "rewrap_archive_keys"]


class AccountArchive(Base):
    """The archive of a closed account: its keys, when it closed, its deletion."""

    __tablename__ = "account_archives"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(16))
    archive_key_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    """A random archive key, wrapped by the master key."""
    data_key_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    """The account's data key, wrapped by the archive key."""
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deletion_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deletion_requested_by: Mapped[str | None] = mapped_column(String(80))
    delete_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeletionRequest(Base):
    """A deletion of the archive asked for before closing (applied when the account closes)."""

    __tablename__ = "deletion_requests"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(80))


@dataclass(frozen=True)
class ArchiveInfo:
    closed_at: datetime
    deletion_requested_at: datetime | None
    delete_after: datetime | None
    deleted_at: datetime | None


async def bump_generation_in(s: AsyncSession) -> None:
    """Bump the one-row key generation: every process drops its cached data keys."""
    bumped = await s.execute(update(KeyGeneration).where(KeyGeneration.id == 1)
                             .values(generation=KeyGeneration.generation + 1))
    if not getattr(bumped, "rowcount", 0):
        s.add(KeyGeneration(id=1, generation=1))


def _ak_aad(account_id: int) -> bytes:
    return f"archivekey:{account_id}".encode()


def _dk_aad(account_id: int) -> bytes:
    return f"archive-datakey:{account_id}".encode()


async def rewrap_archive_keys(s: AsyncSession, ring: MasterKeyring, new_id: str) -> int:
    """Re-wrap every archive key under the master key ``new_id`` (master key rotation)."""
    count = 0
    for row in (await s.execute(select(AccountArchive))).scalars().all():
        if row.master_key_id == new_id:
            continue
        key = unseal(ring.keys[row.master_key_id], row.archive_key_wrapped,
                     _ak_aad(row.account_id))
        row.archive_key_wrapped = seal(ring.keys[new_id], key, _ak_aad(row.account_id))
        row.master_key_id = new_id
        count += 1
    return count


class Archives:
    """The key moves of closing and reactivating (in the caller's transaction)."""

    def __init__(self, ring: MasterKeyring) -> None:
        self.ring = ring

    def _seal_archive(self, account_id: int, data_key: bytes) -> tuple[str, bytes, bytes]:
        archive_key = new_data_key()
        ring = self.ring
        wrapped_ak = seal(ring.keys[ring.current_id], archive_key, _ak_aad(account_id))
        return ring.current_id, wrapped_ak, seal(archive_key, data_key, _dk_aad(account_id))

    def _open_archive(self, row: AccountArchive) -> bytes:
        try:
            master = self.ring.keys[row.master_key_id]
        except KeyError:
            raise NotFound(f"master key {row.master_key_id} is not in the key file") from None
        archive_key = unseal(master, row.archive_key_wrapped, _ak_aad(row.account_id))
        return unseal(archive_key, row.data_key_wrapped, _dk_aad(row.account_id))

    async def archive_in(self, s: AsyncSession, account_id: int, *, closed_at: datetime
                         ) -> None:
        """Move the account's data key from ``mailbox_keys`` into a new archive row, moving a
        pending deletion request into it too."""
        row = await s.get(MailboxKey, account_id, populate_existing=True)
        if row is None or row.wrapped is None:
            raise NotFound("no data key to archive for this account")
        data_key = self.ring.unwrap(row.master_key_id, row.wrapped, account_id)
        key_id, wrapped_ak, wrapped_dk = self._seal_archive(account_id, data_key)
        request = await s.get(DeletionRequest, account_id)
        s.add(AccountArchive(
            account_id=account_id, master_key_id=key_id, archive_key_wrapped=wrapped_ak,
            data_key_wrapped=wrapped_dk, closed_at=closed_at,
            deletion_requested_at=request.requested_at if request else None,
            deletion_requested_by=request.requested_by if request else None))
        await s.execute(delete(MailboxKey).where(MailboxKey.account_id == account_id))
        await s.execute(delete(DeletionRequest).where(DeletionRequest.account_id == account_id))
        await bump_generation_in(s)
        await s.flush()

    async def restore_in(self, s: AsyncSession, account_id: int) -> None:
        """Move the archived data key back into ``mailbox_keys`` and drop the archive. An
        account closed before archives existed kept its key in place: nothing to move."""
        row = await s.get(AccountArchive, account_id, populate_existing=True)
        if row is None:
            kept = await s.get(MailboxKey, account_id, populate_existing=True)
            if kept is not None and kept.wrapped is not None:
                return
            raise NotFound("no archive for this account")
        key_id, wrapped = self.ring.wrap(self._open_archive(row), account_id)
        await s.execute(delete(AccountArchive).where(AccountArchive.account_id == account_id))
        await s.execute(delete(MailboxKey).where(MailboxKey.account_id == account_id))
        s.add(MailboxKey(account_id=account_id, master_key_id=key_id, wrapped=wrapped))
        await bump_generation_in(s)
        await s.flush()

    async def data_key_in(self, s: AsyncSession, account_id: int) -> bytes:
        """The archived data key (to re-seal the identity, or read the contact address)."""
        row = await s.get(AccountArchive, account_id)
        if row is None:
            raise NotFound("no archive for this account")
        return self._open_archive(row)

    async def replace_in(self, s: AsyncSession, account_id: int, *, deleted_at: datetime
                         ) -> bytes:
        """Destroy the archived keys: a fresh, empty data key takes their place (returned);
        ``deleted_at`` is recorded."""
        row = await s.get(AccountArchive, account_id, populate_existing=True)
        if row is None:
            raise NotFound("no archive for this account")
        fresh = new_data_key()
        row.master_key_id, row.archive_key_wrapped, row.data_key_wrapped = \
            self._seal_archive(account_id, fresh)
        row.deleted_at = deleted_at
        row.delete_after = None
        await bump_generation_in(s)
        return fresh

    @staticmethod
    async def drop_in(s: AsyncSession, account_id: int) -> None:
        """Forget the archive row (purge)."""
        await s.execute(delete(AccountArchive).where(AccountArchive.account_id == account_id))
        await s.execute(delete(DeletionRequest).where(DeletionRequest.account_id == account_id))
        await bump_generation_in(s)

    @staticmethod
    async def info(s: AsyncSession, account_id: int) -> ArchiveInfo | None:
        row = await s.get(AccountArchive, account_id, populate_existing=True)
        if row is None:
            return None
        return ArchiveInfo(row.closed_at, row.deletion_requested_at, row.delete_after,
                           row.deleted_at)

    @staticmethod
    async def request(s: AsyncSession, account_id: int) -> DeletionRequest | None:
        return await s.get(DeletionRequest, account_id, populate_existing=True)

    @staticmethod
    async def request_open_in(s: AsyncSession, account_id: int, *, at: datetime, by: str
                              ) -> None:
        """Record a deletion request for an open account (kept: the first request counts)."""
        if await s.get(DeletionRequest, account_id) is None:
            s.add(DeletionRequest(account_id=account_id, requested_at=at, requested_by=by[:80]))
            await s.flush()

    @staticmethod
    async def request_closed_in(s: AsyncSession, account_id: int, *, at: datetime, by: str,
                                delete_after: datetime) -> ArchiveInfo:
        """Record a deletion request on an archive (an earlier request keeps its dates)."""
        row = await s.get(AccountArchive, account_id, populate_existing=True)
        if row is None:
            raise NotFound("no archive for this account")
        if row.deletion_requested_at is None:
            row.deletion_requested_at, row.deletion_requested_by = at, by[:80]
        if row.delete_after is None and row.deleted_at is None:
            row.delete_after = delete_after
        await s.flush()
        return ArchiveInfo(row.closed_at, row.deletion_requested_at, row.delete_after,
                           row.deleted_at)

    @staticmethod
    async def due_deletions(s: AsyncSession, as_of: datetime, limit: int) -> Sequence[int]:
        """Accounts whose archive deletion is due at ``as_of``."""
        return (await s.execute(select(AccountArchive.account_id).where(
            AccountArchive.delete_after.is_not(None), AccountArchive.deleted_at.is_(None),
            AccountArchive.delete_after <= as_of).order_by(AccountArchive.delete_after)
            .limit(limit))).scalars().all()

    @staticmethod
    async def closed_before(s: AsyncSession, moment: datetime, limit: int
                            ) -> Sequence[tuple[int, datetime]]:
        """Archives closed at or before ``moment``: (account id, closed at)."""
        rows = (await s.execute(select(AccountArchive.account_id, AccountArchive.closed_at)
                                .where(AccountArchive.closed_at <= moment)
                                .order_by(AccountArchive.closed_at).limit(limit))).all()
        return [(int(r[0]), r[1]) for r in rows]
