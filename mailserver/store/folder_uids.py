"""A folder's UIDs: all of them for a SELECT (one array on PostgreSQL, keyset pages on
SQLite), the lowest unseen one (a probe of the partial index ``ix_messages_folder_unseen``),
which of a session's known UIDs vanished (per-bucket counts, then the dirty buckets' UIDs),
and :class:`KnownUids`, the UIDs of large folders a process's sessions share.

An IMAP session on a 100,000-message folder must not build one Python object per message just
to answer SELECT: the UIDs travel as an ``array('Q')``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import BigInteger, Select, Table, bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mailserver.store.db import Database, Reader
from mailserver.store.direct import direct
from mailserver.store.models import UNSEEN_WHERE, Message

__all__ = ["Known", "KnownUids", "KNOWN_LAG", "all_uids", "uids_and_first_unseen",
           "first_unseen_uid", "vanished_known"]

_MT = cast(Table, Message.__table__)
_UIDS_PAGE = select(_MT.c.uid).where(
    _MT.c.folder_id == bindparam("f"), _MT.c.uid > bindparam("u")
).order_by(_MT.c.uid).limit(bindparam("n"))
_UIDS_PAGE_SIZE = 5000
# PostgreSQL: every UID in one array value (decoded by asyncpg in C), no per-row result
# processing: 100 k UIDs cost ~10 ms of the server's CPU instead of ~300. ARRAY(subquery) keeps
# the index's order: an index-only scan and no sort (array_agg(... ORDER BY) sorts).
_UIDS_SUBQUERY = select(_MT.c.uid).where(
    _MT.c.folder_id == bindparam("f")).order_by(_MT.c.uid).scalar_subquery()
_UIDS_ARRAY = direct(select(func.array(_UIDS_SUBQUERY)))
# The lowest unseen UID: one probe of the partial index ix_messages_folder_unseen, whose
# predicate the query repeats (per engine).
_FIRST_UNSEEN = {dialect: select(func.min(_MT.c.uid)).where(_MT.c.folder_id == bindparam("f"),
                                                           text(where))
                 for dialect, where in UNSEEN_WHERE.items()}
# SELECT's UIDs and its [UNSEEN n] in one statement (PostgreSQL): an index-only scan of the
# folder's UIDs and a probe of the unseen index, never the rows themselves.
_UIDS_AND_UNSEEN = direct(select(func.array(_UIDS_SUBQUERY),
                                 _FIRST_UNSEEN["postgresql"].scalar_subquery()))
_BUCKET = ((_MT.c.uid - bindparam("lo", type_=BigInteger)) // bindparam("w", type_=BigInteger)
           ).label("b")
_BUCKET_COUNTS = direct(select(_BUCKET, func.count()).where(
    _MT.c.folder_id == bindparam("f"), _MT.c.uid >= bindparam("lo"),
    _MT.c.uid <= bindparam("hi")).group_by(_BUCKET))


@lru_cache(maxsize=None)
def _uids_in_ranges(n: int) -> Select[Any]:
    """UIDs of a folder within ``n`` ranges (``lo0``..``hi0``, ...): one statement per ``n``."""
    return direct(select(_MT.c.uid).where(_MT.c.folder_id == bindparam("f"), or_(*[
        _MT.c.uid.between(bindparam(f"lo{i}"), bindparam(f"hi{i}")) for i in range(n)])))


#: Buckets the known UID range is cut into when looking for vanished messages.
_BUCKETS = 64
#: Above this many buckets with missing messages, the whole known range is read.
_MAX_DIRTY = 16


async def all_uids(db: Database, folder_id: int) -> array[int]:
    """All UIDs of a folder, ascending, as a compact array."""
    if not db.is_sqlite:
        async with db.read() as s:
            return array("Q", (await s.execute(_UIDS_ARRAY, {"f": folder_id})).scalar()
                         or ())
    out: array[int] = array("Q")
    async with db.read() as s:  # keyset pages: bounded memory, no transaction
        while True:
            page = (await s.execute(_UIDS_PAGE, {"f": folder_id, "u": out[-1] if out else 0,
                                                 "n": _UIDS_PAGE_SIZE})).scalars().all()
            out.extend(page)
            if len(page) < _UIDS_PAGE_SIZE:
                return out


async def uids_and_first_unseen(db: Database, folder_id: int
                                ) -> tuple[array[int], int | None]:
    """:func:`all_uids` and :func:`first_unseen_uid`, read together (one statement on
    PostgreSQL): the lowest UID without \\Seen is one of those UIDs."""
    if db.is_sqlite:
        return await all_uids(db, folder_id), await first_unseen_uid(db, folder_id)
    async with db.read() as s:
        row = (await s.execute(_UIDS_AND_UNSEEN, {"f": folder_id})).one()
    return array("Q", row[0] or ()), row[1]


async def first_unseen_uid(db: Database, folder_id: int) -> int | None:
    """Lowest UID without \\Seen (for SELECT's ``[UNSEEN n]``)."""
    stmt = _FIRST_UNSEEN["sqlite" if db.is_sqlite else "postgresql"]
    async with db.read() as s:
        first: int | None = (await s.execute(stmt, {"f": folder_id})).scalar()
    return first


async def vanished_known(s: AsyncSession | AsyncConnection | Reader, folder_id: int,
                    known: array[int]) -> list[int]:
    """Known UIDs that no longer exist: per-bucket counts first, then the dirty buckets' UIDs."""
    lo, hi = known[0], known[-1]
    width = max(32, (hi - lo) // _BUCKETS + 1)
    counts: dict[int, int] = dict((await s.execute(
        _BUCKET_COUNTS, {"f": folder_id, "lo": lo, "hi": hi, "w": width})).all())
    dirty: list[tuple[int, int]] = []  # index ranges into ``known``
    n_buckets = (hi - lo) // width + 1
    start = 0
    for b in range(n_buckets):
        end = bisect_left(known, lo + (b + 1) * width, start)
        if end - start != counts.get(b, 0):
            dirty.append((start, end))
        start = end
    if not dirty:
        return []
    if len(dirty) > _MAX_DIRTY:
        dirty = [(0, len(known))]
    params: dict[str, int] = {"f": folder_id}
    for i, (a, e) in enumerate(dirty):
        params[f"lo{i}"], params[f"hi{i}"] = known[a], known[e - 1]
    # a few short range scans on (folder_id, uid), in one round trip
    present: set[int] = set((await s.execute(_uids_in_ranges(len(dirty)), params)).scalars())
    return [u for a, e in dirty for u in known[a:e] if u not in present]


@dataclass(frozen=True)
class Known:
    uidvalidity: int
    modseq: int
    """The folder's HIGHESTMODSEQ when ``uids`` were read or brought up to date (the UIDs may
    be newer: bringing them up to date again from there is idempotent)."""
    uids: array[int]


class KnownUids:
    """The UIDs of large folders as a process last saw them, shared by its IMAP sessions: a
    SELECT brings them up to date from the folder's changes since (:meth:`ImapStore.delta`,
    one snapshot read when a few messages came or went) instead of reading every UID again.

    Only folders of at least ``min_size`` messages are kept (a small folder's UIDs are one
    cheap read), up to ``max_uids`` UIDs in all (8 bytes each), least recently selected
    dropped first. Nothing here is trusted without the database: an entry is used only for
    the same folder and UIDVALIDITY, and brought up to date from its modseq first, so
    changes made by any process are seen. UIDs are not content: nothing to shred.
    """

    def __init__(self, *, min_size: int = 2_000, max_uids: int = 4_000_000) -> None:
        self.min_size = min_size
        self.max_uids = max_uids
        self._items: OrderedDict[int, Known] = OrderedDict()
        self._total = 0

    def get(self, folder_id: int, uidvalidity: int) -> Known | None:
        known = self._items.get(folder_id)
        if known is None or known.uidvalidity != uidvalidity:
            return None
        self._items.move_to_end(folder_id)
        return known

    def put(self, folder_id: int, known: Known) -> None:
        self.drop(folder_id)
        if len(known.uids) < self.min_size or len(known.uids) > self.max_uids:
            return
        self._items[folder_id] = known
        self._total += len(known.uids)
        while self._total > self.max_uids:
            _, old = self._items.popitem(last=False)
            self._total -= len(old.uids)

    def drop(self, folder_id: int) -> None:
        old = self._items.pop(folder_id, None)
        if old is not None:
            self._total -= len(old.uids)


#: Shared UIDs further behind their folder than this many modseqs (or one per 8 UIDs they
#: hold, if more) are read again in full: the changes since would cost as much to read.
KNOWN_LAG = 256
