"""Expunged-UID tombstones for QRESYNC (RFC 7162 3.2.5, 3.2.6): which UIDs left a folder, and
at which modseq.

Every statement that removes a message from a folder (EXPUNGE, CLOSE, MOVE away, the account's
erasure, renaming INBOX) writes one ``(folder, uid, modseq)`` row in the same transaction, with
the folder's new ``highestmodseq``. A client resynchronising from modseq ``m`` is answered
``VANISHED (EARLIER)`` with the UIDs of the rows above ``m``. Deleting a folder deletes its
rows (a folder recreated under that name gets a new UIDVALIDITY, so no client can ask).

Pruning: rows only grow with expunges (about 20 bytes each). A later job may delete the rows
of a folder below a floor modseq kept on the folder; a client asking from below the floor is
then answered, as RFC 7162 3.2.5.2 allows, with every UID it named that no longer exists
(``known-uids`` minus the present ones). Nothing prunes them yet.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from sqlalchemy import BigInteger, ForeignKey, Index, delete, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import ColumnElement

from mailserver.store.db import Database
from mailserver.store.models import Base, Folder, Message
from mailserver.store.records import chunks

__all__ = ["ExpungedUid", "record_in", "record_folder_in", "record_account_in",
           "forget_folder_in", "vanished_since"]


class ExpungedUid(Base):
    """A UID that left its folder at ``modseq`` (RFC 7162 3.2.5: VANISHED (EARLIER))."""

    __tablename__ = "expunged_uids"
    __table_args__ = (Index("ix_expunged_uids_folder_modseq", "folder_id", "modseq"),)

    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"), primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    modseq: Mapped[int] = mapped_column(BigInteger)


async def record_in(s: AsyncSession, folder_id: int, uids: Iterable[int], modseq: int) -> None:
    """Record ``uids`` as expunged from ``folder_id`` at ``modseq`` (caller's transaction)."""
    for part in chunks(sorted(uids), 500):
        await s.execute(insert(ExpungedUid), [
            {"folder_id": folder_id, "uid": u, "modseq": modseq} for u in part])


async def record_folder_in(s: AsyncSession, folder_id: int, modseq: int,
                           where: ColumnElement[bool] | None = None) -> None:
    """Record every message of ``folder_id`` (matching ``where``) as expunged at ``modseq``,
    before the caller deletes or moves them (one INSERT ... SELECT)."""
    q = select(Message.folder_id, Message.uid, literal(modseq)).where(
        Message.folder_id == folder_id)
    if where is not None:
        q = q.where(where)
    await s.execute(insert(ExpungedUid).from_select(["folder_id", "uid", "modseq"], q))


async def record_account_in(s: AsyncSession, account_id: int) -> None:
    """Record every message of the account as expunged at its folder's next modseq (the
    caller deletes them and bumps each folder's ``highestmodseq`` by one)."""
    q = select(Message.folder_id, Message.uid, Folder.highestmodseq + 1).join(
        Folder, Folder.id == Message.folder_id).where(Message.account_id == account_id)
    await s.execute(insert(ExpungedUid).from_select(["folder_id", "uid", "modseq"], q))


async def forget_folder_in(s: AsyncSession, folder_id: int) -> None:
    """Delete a folder's tombstones (the folder itself is being deleted)."""
    await s.execute(delete(ExpungedUid).where(ExpungedUid.folder_id == folder_id))


async def vanished_since(db: Database, folder_id: int, modseq: int,
                         ranges: Sequence[tuple[int, int]] | None = None) -> list[int]:
    """UIDs expunged from ``folder_id`` after ``modseq``, ascending; only those within the
    inclusive UID ``ranges`` when given (RFC 7162 3.2.5.1 known-uids, 3.2.6 the UID set)."""
    q = select(ExpungedUid.uid).where(ExpungedUid.folder_id == folder_id,
                                      ExpungedUid.modseq > modseq).order_by(ExpungedUid.uid)
    async with db.reader() as s:
        uids = list((await s.execute(q)).scalars())
    if ranges is None:
        return uids
    spans: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):  # merged: disjoint and ascending
        if spans and lo <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
    lows = [lo for lo, _ in spans]
    return [u for u in uids if (i := bisect_right(lows, u)) and spans[i - 1][1] >= u]
