"""Expunged-UID tombstones for QRESYNC (RFC 7162 3.2.5, 3.2.6): which UIDs left a folder, and
at which modseq.

Every statement that removes a message from a folder (EXPUNGE, CLOSE, MOVE away, the account's
erasure, renaming INBOX) writes one ``(folder, uid, modseq)`` row in the same transaction, with
the folder's new ``highestmodseq``. A client resynchronising from modseq ``m`` is answered
``VANISHED (EARLIER)`` with the UIDs of the rows above ``m``. Deleting a folder deletes its
rows (a folder recreated under that name gets a new UIDVALIDITY, so no client can ask).

Pruning (job ``prune_vanished``, every ``[imap] vanished_prune_seconds``): a folder keeps
its newest ``[imap] vanished_keep`` tombstones.  The older rows are deleted and the folder's
``vanished_floor`` raised, in one transaction, to just below the oldest modseq kept, so every
row above the floor is still there.  A client asking from a modseq at or above the floor is
answered exactly; one asking from below it is answered, as RFC 7162 3.2.5.2 and 3.2.6 allow,
with every UID of its ``known-uids`` (or of the UID FETCH set; of ``1:UIDNEXT-1`` when it gave
none) that no longer exists: UIDs it never saw may be among them, and it ignores those.  A
reader reads the rows *before* the floor: a prune that committed between the two statements
(PostgreSQL, read committed) is then seen through the floor and answered the safe way.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from functools import partial

from sqlalchemy import BigInteger, ForeignKey, Index, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import ColumnElement

from mailserver.store.db import Database
from mailserver.store.jobs import JobInfo, Jobs
from mailserver.store.models import Base, Folder, Message
from mailserver.store.records import chunks

__all__ = ["ExpungedUid", "record_in", "record_folder_in", "record_account_in",
           "forget_folder_in", "vanished_since", "TombstonePrune", "JOB_PRUNE_VANISHED"]

log = logging.getLogger(__name__)

JOB_PRUNE_VANISHED = "prune_vanished"


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


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges made disjoint and ascending."""
    spans: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if spans and lo <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
    return spans


def _missing(spans: list[tuple[int, int]], present: Iterable[int]) -> Iterator[int]:
    """The UIDs of ``spans`` (disjoint, ascending) not in ``present`` (ascending)."""
    it = iter(present)
    nxt = next(it, None)
    for lo, hi in spans:
        u = lo
        while u <= hi:
            while nxt is not None and nxt < u:
                nxt = next(it, None)
            if nxt is None or nxt > hi:
                yield from range(u, hi + 1)
                break
            yield from range(u, nxt)
            u = nxt + 1


async def vanished_since(db: Database, folder_id: int, modseq: int,
                         ranges: Sequence[tuple[int, int]] | None = None) -> list[int]:
    """UIDs expunged from ``folder_id`` after ``modseq``, ascending; only those within the
    inclusive UID ``ranges`` when given (RFC 7162 3.2.5.1 known-uids, 3.2.6 the UID set).

    From below the folder's ``vanished_floor`` (tombstones pruned): every UID of ``ranges``
    (``1:UIDNEXT-1`` without them) that is not in the folder (RFC 7162 3.2.5.2).
    """
    q = select(ExpungedUid.uid).where(ExpungedUid.folder_id == folder_id,
                                      ExpungedUid.modseq > modseq).order_by(ExpungedUid.uid)
    async with db.reader() as s:
        uids = list((await s.execute(q)).scalars())
        folder = (await s.execute(select(Folder.vanished_floor, Folder.uidnext).where(
            Folder.id == folder_id))).first()  # after the rows: see the module docstring
        if folder is not None and modseq < folder[0]:
            top = int(folder[1]) - 1
            spans = [(lo, min(hi, top)) for lo, hi in _merged(ranges or [(1, top)]) if lo <= top]
            present = (await s.execute(select(Message.uid).where(
                Message.folder_id == folder_id, Message.uid <= top).order_by(Message.uid)
            )).scalars()
            return list(_missing(spans, present))
    if ranges is None:
        return uids
    spans = _merged(ranges)
    lows = [lo for lo, _ in spans]
    return [u for u in uids if (i := bisect_right(lows, u)) and spans[i - 1][1] >= u]


class TombstonePrune:
    """Job ``prune_vanished``: each folder keeps its newest ``keep`` tombstones (see the
    module docstring)."""

    def __init__(self, db: Database, *, keep: int, interval: float) -> None:
        self.db = db
        self.keep = keep
        self.interval = interval

    async def run_once(self) -> int:
        """One pass over the folders holding more than ``keep`` tombstones; returns the
        number of rows deleted."""
        async with self.db.session() as s:
            folders = list((await s.execute(
                select(ExpungedUid.folder_id).group_by(ExpungedUid.folder_id)
                .having(func.count() > self.keep))).scalars())
        deleted = 0
        for folder_id in folders:
            deleted += await self.db.write(partial(self._prune_in, folder_id=folder_id))
        if deleted:
            log.info("vanished: %d expunged-UID tombstone(s) pruned in %d folder(s)",
                     deleted, len(folders))
        return deleted

    async def _prune_in(self, s: AsyncSession, folder_id: int) -> int:
        oldest_kept = (await s.execute(
            select(ExpungedUid.modseq).where(ExpungedUid.folder_id == folder_id)
            .order_by(ExpungedUid.modseq.desc()).offset(self.keep - 1).limit(1))).scalar()
        if oldest_kept is None:
            return 0
        floor = int(oldest_kept) - 1  # rows sharing the oldest kept modseq all stay
        result = await s.execute(delete(ExpungedUid).where(
            ExpungedUid.folder_id == folder_id, ExpungedUid.modseq <= floor))
        await s.execute(update(Folder).where(Folder.id == folder_id,
                                             Folder.vanished_floor < floor)
                        .values(vanished_floor=floor))
        return int(getattr(result, "rowcount", 0) or 0)

    async def handle_job(self, job: JobInfo) -> None:
        """One pass, then the next one is scheduled."""
        await self.run_once()
        await self.schedule(self.interval, running=1)

    async def schedule(self, delay: float = 0.0, *, running: int = 0) -> None:
        """Enqueue a pass unless one is already waiting (``running``: this job itself)."""
        await Jobs(self.db).schedule_once(JOB_PRUNE_VANISHED, delay=delay, running=running)
