"""The rows of the exports prepared in the background (one per account at most): asked for,
ready (its blob and its content key sealed under the account's data key), until when.
SQL only; :mod:`mailserver.export.prepared` holds the logic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.store.models import ID, Base

__all__ = ["PreparedExport", "PreparedRow", "get_in", "ask_in", "ready_in", "drop_in",
           "expired_in", "erase_account_in"]


class PreparedExport(Base):
    __tablename__ = "prepared_exports"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    blob_key: Mapped[str | None] = mapped_column(String(64))
    content_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The archive's content key, sealed under the account's data key."""
    size: Mapped[int] = mapped_column(ID, default=0)  # BIGINT: an archive may pass 2 GiB


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None \
        else moment


@dataclass(frozen=True)
class PreparedRow:
    account_id: int
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None
    blob_key: str | None
    content_key_enc: bytes | None
    size: int

    @classmethod
    def of(cls, r: PreparedExport) -> PreparedRow:
        return cls(r.account_id, _aware(r.requested_at) or r.requested_at, _aware(r.ready_at),
                   _aware(r.expires_at), r.blob_key, r.content_key_enc, r.size or 0)


async def get_in(s: AsyncSession, account_id: int) -> PreparedRow | None:
    row = await s.get(PreparedExport, account_id)
    return PreparedRow.of(row) if row is not None else None


async def ask_in(s: AsyncSession, account_id: int, at: datetime) -> str | None:
    """Record a new request (replacing a previous archive); the old blob key to delete."""
    row = await s.get(PreparedExport, account_id)
    old = row.blob_key if row is not None else None
    if row is None:
        s.add(PreparedExport(account_id=account_id, requested_at=at, size=0))
    else:
        row.requested_at, row.ready_at, row.expires_at = at, None, None
        row.blob_key, row.content_key_enc, row.size = None, None, 0
    return old


async def ready_in(s: AsyncSession, account_id: int, requested_at: datetime, *,
                   blob_key: str, content_key_enc: bytes, size: int, at: datetime,
                   expires_at: datetime) -> bool:
    """Mark the request of ``requested_at`` ready; False if it was replaced or dropped."""
    row = await s.get(PreparedExport, account_id)
    if row is None or _aware(row.requested_at) != requested_at or row.ready_at is not None:
        return False
    row.ready_at, row.expires_at, row.size = at, expires_at, size
    row.blob_key, row.content_key_enc = blob_key, content_key_enc
    return True


async def drop_in(s: AsyncSession, account_id: int) -> str | None:
    """Delete the account's row; its blob key (to delete after the commit)."""
    row = await s.get(PreparedExport, account_id)
    if row is None:
        return None
    await s.delete(row)
    return row.blob_key


async def expired_in(s: AsyncSession, now: datetime, limit: int = 100) -> list[int]:
    q = (select(PreparedExport.account_id).where(PreparedExport.expires_at <= now)
         .limit(limit))
    return list((await s.execute(q)).scalars().all())


async def erase_account_in(s: AsyncSession, account_id: int) -> list[str]:
    """The closing eraser: the account's prepared archive goes with its space."""
    key = (await s.execute(select(PreparedExport.blob_key).where(
        PreparedExport.account_id == account_id))).scalar_one_or_none()
    await s.execute(delete(PreparedExport).where(PreparedExport.account_id == account_id))
    return [key] if key else []
