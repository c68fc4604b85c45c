"""Lean reads for the IMAP front end, and the sealed per-message IMAP summary cache.

Theory of operation
-------------------
An IMAP session on a 100,000-message folder must not build one Python object per message
just to answer SELECT, so the folder's UIDs travel as an ``array('Q')`` (``folder_uids.py``,
shared between sessions for large folders) and the other reads fetch only the rows (and
columns) a command needs, in UID chunks.

FETCH ENVELOPE / BODYSTRUCTURE / header sections are served from a cached summary: the
protocol layer's summary of each message (opaque bytes, see ``SummaryCodec``), sealed with
the account's data key into ``messages.meta_enc`` (associated data ``imapmeta:<account>:<storage
key>``, so a COPY, which shares the storage key and the column, stays valid). The summary is
computed the first time a message is asked for and written back in one group-committed
transaction per batch; nothing is ever stored in clear.  That write is best-effort: a read is
answered from the computed summary even when the write fails (full disk, busy database), and
the next read tries again.

\\Recent (RFC 3501 2.3.2) is claimed in the store, not in a process: ``folders.recent_uid`` is
the highest UID some read-write session has been told about as \\Recent.
:meth:`ImapStore.claim_recent` raises it under the folder's row lock and returns the previous
value, so exactly one session, whichever server process it runs in, gets each message as
\\Recent.
"""

from __future__ import annotations

import logging
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, TypeVar, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Table,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import NotFound, StoreError
from mailserver.store.changes import derive_keywords
from mailserver.store.db import account_lock
from mailserver.store.direct import direct
from mailserver.store.folder_uids import (
    KNOWN_LAG,
    Known,
    KnownUids,
    all_uids,
    first_unseen_uid,
    uids_and_first_unseen,
    vanished_known,
)
from mailserver.store.mailstore import AppendHook, FolderInfo, MailStore
from mailserver.store.models import Folder, Message
from mailserver.store.records import AppendResult
from mailserver.store.vanished import vanished_since

__all__ = ["DecodedSummaries", "ImapStore", "Row", "SummaryCodec", "Change", "Delta"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_CHUNK = 500


_FOLDER_BY_ID = direct(select(*Folder.__table__.c).where(Folder.id == bindparam("f")))


class Row(NamedTuple):
    """What FETCH/SEARCH need of one message, without its content."""

    id: int
    uid: int
    modseq: int
    flags: str
    internaldate: datetime
    size: int
    storage_key: str


class Change(NamedTuple):
    """A message whose modseq moved past what a session knows."""

    uid: int
    modseq: int
    flags: str


class SummaryCodec(Protocol[T]):
    """How the protocol layer turns a message into its cached summary and back. The store only
    seals, stores and unseals the bytes; it knows nothing of their format."""

    def of(self, raw: bytes) -> T: ...

    def loads(self, data: bytes) -> T: ...

    def dumps(self, value: T) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed in a folder relative to a session's view, read in one snapshot.

    ``new`` are the UIDs above the highest one the session knows; ``gone`` the known UIDs
    that no longer exist (None when not asked for or nothing vanished: then ``[]``).
    ``recent_uid`` is the folder's \\Recent high-water mark; ``keywords`` the keywords used
    in the folder (space-separated; None when nothing changed).
    """

    highestmodseq: int
    message_count: int
    changes: list[Change]
    new: array[int]
    gone: list[int]
    recent_uid: int = 0
    keywords: str | None = None


# Prebuilt Core statements of the per-command poll (built once: no ORM instance, no statement
# construction per call; SQLAlchemy memoises their compiled form).
_FT = cast(Table, Folder.__table__)
_MT = cast(Table, Message.__table__)
# The folder's state and its messages changed since ``m`` or above UID ``u``: one statement,
# so one round trip and one snapshot (a folder row with no such message gives one row of NULLs).
_STATE_AND_CHANGES = direct(select(
    _FT.c.highestmodseq, _FT.c.message_count, _FT.c.recent_uid, _FT.c.keywords,
    _MT.c.uid, _MT.c.modseq, _MT.c.flags,
).select_from(_FT.outerjoin(_MT, (_MT.c.folder_id == _FT.c.id) & (
    (_MT.c.modseq > bindparam("m")) | (_MT.c.uid > bindparam("u"))))
).where(_FT.c.id == bindparam("f")).order_by(_MT.c.uid))
_LOCK_FOLDER = select(_FT.c.recent_uid, _FT.c.keywords).where(
    _FT.c.id == bindparam("f")).with_for_update()
_OLD_MARK = select(_FT.c.id, _FT.c.recent_uid).where(
    _FT.c.id == bindparam("f")).with_for_update().subquery("old")
# PostgreSQL: raise the \\Recent mark and return the one it replaced, in one statement.
_CLAIM = (update(_FT).where(_FT.c.id == _OLD_MARK.c.id,
                            func.coalesce(_OLD_MARK.c.recent_uid, 0) < bindparam("upto"))
          .values(recent_uid=bindparam("upto")).returning(
              func.coalesce(_OLD_MARK.c.recent_uid, 0)))
def _aad(account_id: int, storage_key: str) -> bytes:
    return f"imapmeta:{account_id}:{storage_key}".encode()


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


_ROW_COLS = (Message.id, Message.uid, Message.modseq, Message.flags, Message.internaldate,
             Message.size, Message.blob_key)


_ROWS_RANGE = direct(select(*_ROW_COLS).where(
    Message.folder_id == bindparam("f"), Message.uid >= bindparam("lo"),
    Message.uid <= bindparam("hi")).order_by(Message.uid))
_ROWS_IN = select(*_ROW_COLS).where(
    Message.folder_id == bindparam("f"),
    Message.uid.in_(bindparam("u", expanding=True))).order_by(Message.uid)
# PostgreSQL: the same with the UIDs as one array (= ANY): a statement asyncpg can prepare.
_ROWS_ANY = direct(select(*_ROW_COLS).where(
    Message.folder_id == bindparam("f"),
    Message.uid == func.any(bindparam("u", type_=ARRAY(BigInteger)))).order_by(Message.uid))
_ROWS_RANGE_META = _ROWS_RANGE.add_columns(Message.meta_enc)  # and the sealed summary
_ROWS_IN_META = _ROWS_IN.add_columns(Message.meta_enc)
_ROWS_ANY_META = _ROWS_ANY.add_columns(Message.meta_enc)
_ALL_ROWS = select(_MT.c.id, _MT.c.uid, _MT.c.modseq, _MT.c.flags, _MT.c.internaldate,
                   _MT.c.size, _MT.c.blob_key).where(
    _MT.c.folder_id == bindparam("f")).order_by(_MT.c.uid)
_SET_META = update(_MT).where(_MT.c.id == bindparam("i")).values(meta_enc=bindparam("b"))
_METAS = select(Message.id, Message.meta_enc).where(
    Message.id.in_(bindparam("ids", expanding=True)))


def _row(r: Sequence[object]) -> Row:
    return Row(r[0], r[1], r[2], r[3], _utc(r[4]), r[5], r[6] or "")  # type: ignore[arg-type]


class DecodedSummaries:
    """Summaries already unsealed and decoded, shared by a process's IMAP sessions, keyed
    by the sealed bytes themselves (a fresh nonce each time a summary is sealed, compared in
    full on a hash match: a hit is exactly the message's summary, whatever the message id).

    The first FETCH ENVELOPE of a message unseals and decodes its summary (most of that
    command's CPU); the sessions of a mailbox then ask for the same messages again and again.
    A hit is served only after the account's data key was found (:meth:`ImapStore.metas`), so
    crypto-shredding or closing the account makes the cached entries unreachable at once.
    """

    def __init__(self, size: int = 5_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, bytes], object] = OrderedDict()

    def get(self, codec: object, sealed: bytes) -> object | None:
        key = (codec, sealed)
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, codec: object, sealed: bytes, value: object) -> None:
        self._items[(codec, sealed)] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)


class ImapStore:
    """IMAP-shaped reads over a :class:`MailStore` (same database, keys and blobs)."""

    def __init__(self, store: MailStore, summaries: DecodedSummaries | None = None,
                 known: KnownUids | None = None) -> None:
        self.store = store
        self.db = store.db
        self.keys = store.keys
        self.summaries = summaries if summaries is not None else DecodedSummaries(0)
        self.known = known if known is not None else KnownUids(max_uids=0)

    async def folder(self, folder_id: int) -> FolderInfo | None:
        """A folder by id, or None if it was deleted."""
        async with self.db.read() as conn:
            row = (await conn.execute(_FOLDER_BY_ID, {"f": folder_id})).first()
        return FolderInfo.of(row) if row is not None else None

    async def uids(self, folder_id: int) -> array[int]:
        """All UIDs of a folder, ascending, as a compact array."""
        return await all_uids(self.db, folder_id)

    async def select_uids(self, folder: FolderInfo, *, first_unseen: bool
                          ) -> tuple[array[int], int | None]:
        """The UIDs of ``folder`` (a row just read) for a SELECT, ascending, in an array the
        caller owns, and the lowest UID without \\Seen if ``first_unseen``.

        A large folder's UIDs come from :class:`KnownUids` brought up to date (nothing read
        when the folder did not move since), else from one full read.

        Raises:
            NotFound: the folder is gone.
        """
        known = self.known.get(folder.id, folder.uidvalidity)
        if known is None or (folder.highestmodseq - known.modseq
                              > max(KNOWN_LAG, len(known.uids) // 8)):
            if first_unseen:
                uids, first = await uids_and_first_unseen(self.db, folder.id)
            else:
                uids, first = await all_uids(self.db, folder.id), None
            self.known.put(folder.id, Known(folder.uidvalidity, folder.highestmodseq,
                                             array("Q", uids)))
            return uids, first
        uids, modseq = array("Q", known.uids), known.modseq
        if folder.highestmodseq != modseq or folder.message_count != len(uids):
            delta = await self.delta(folder.id, modseq, uids, find_gone=True)
            if delta is None:
                self.known.drop(folder.id)
                raise NotFound("no such folder")
            if delta.gone:
                gone = set(delta.gone)
                uids = array("Q", (u for u in uids if u not in gone))
            uids.extend(delta.new)
            modseq = delta.highestmodseq
            self.known.put(folder.id, Known(folder.uidvalidity, modseq, array("Q", uids)))
        return uids, await first_unseen_uid(self.db, folder.id) if first_unseen else None

    async def snapshot(self, folder_id: int, since_modseq: int
                       ) -> tuple[FolderInfo | None, list[Change]]:
        """The folder row and the messages changed after ``since_modseq``, read together."""
        async with self.db.read() as s:
            f = (await s.execute(_FOLDER_BY_ID, {"f": folder_id})).first()
            if f is None:
                return None, []
            info = FolderInfo.of(f)
            if info.highestmodseq <= since_modseq:
                return info, []
            rows = (await s.execute(select(Message.uid, Message.modseq, Message.flags).where(
                Message.folder_id == folder_id, Message.modseq > since_modseq
            ).order_by(Message.uid))).all()
        return info, [Change(r[0], r[1], r[2]) for r in rows]

    async def delta(self, folder_id: int, since_modseq: int, known: array[int], *,
                    find_gone: bool) -> Delta | None:
        """Changes since a session's view (``known`` UIDs, ascending; ``since_modseq``).

        Reads, in one snapshot: the folder row; if it moved, the messages whose modseq is
        above ``since_modseq``, the UIDs above ``known[-1]`` and, when the folder has fewer
        messages than known + new (an EXPUNGE or MOVE elsewhere) and ``find_gone`` is set,
        which known UIDs vanished.  That last step counts messages per UID bucket first and
        reads only the UIDs of the buckets whose count dropped, so a few expunges in a large
        folder do not reload every UID.  None if the folder is gone.
        """
        top = known[-1] if known else 0
        async with self.db.read() as s:
            rows = (await s.execute(_STATE_AND_CHANGES, {"f": folder_id, "m": since_modseq,
                                                         "u": top})).all()
            if not rows:
                return None
            highest, count = int(rows[0][0]), int(rows[0][1])
            recent_uid = int(rows[0][2] or 0)
            if highest <= since_modseq and count == len(known):
                return Delta(highest, count, [], array("Q"), [], recent_uid)
            keywords = (rows[0][3] if rows[0][3] is not None
                        else await derive_keywords(s, folder_id))
            changes = [Change(r[4], r[5], r[6]) for r in rows
                       if r[4] is not None and r[5] > since_modseq]
            new = array("Q", (r[4] for r in rows if r[4] is not None and r[4] > top))
            gone: list[int] = []
            if find_gone and known and count < len(known) + len(new):
                gone = await vanished_known(s, folder_id, known)
        return Delta(highest, count, changes, new, gone, recent_uid, keywords)

    async def claim_recent(self, folder_id: int, upto: int) -> int:
        """Claim \\Recent up to UID ``upto`` for the calling session (RFC 3501 2.3.2).

        Returns the previous mark: the caller's \\Recent messages are the UIDs above it, up
        to ``upto`` (``upto`` itself when another session claimed them first).  The folder
        row is locked (PostgreSQL) / written by one writer at a time (SQLite), so two
        sessions, even in two processes, never claim the same UID.

        Raises:
            NotFound: the folder is gone (SQLite; on PostgreSQL nothing is claimed).
        """
        if not self.db.is_sqlite:
            # One statement, committed on its own (a reader's AUTOCOMMIT connection).
            async with self.db.reader() as s:
                return await self.claim_recent_in(s, folder_id, upto)

        async def op(s: AsyncSession) -> int:
            return await self.claim_recent_in(s, folder_id, upto)

        return await self.db.write(op)

    def recent_claimer(self, folder_id: int, claims: list[tuple[int, int]]) -> AppendHook:
        """An ``append_many(then=...)`` hook claiming \\Recent up to the appended messages,
        in their transaction; it adds (previous mark, claimed up to) to ``claims``."""
        async def claim(s: AsyncSession, results: list[AppendResult]) -> None:
            upto = max(r.uid for r in results)
            claims.append((await self.claim_recent_in(s, folder_id, upto), upto))
        return claim

    @staticmethod
    async def claim_recent_in(s: AsyncSession, folder_id: int, upto: int) -> int:
        """:meth:`claim_recent` inside the caller's transaction (APPEND claims the message it
        adds to the session's selected folder with the message: no commit of its own)."""
        if s.get_bind().dialect.name == "postgresql":
            # The row lock of its sub-select makes concurrent claims wait for each other, and
            # it returns the mark it replaced. No row: the mark already covers ``upto`` (or
            # the folder is gone, which the session's next poll finds): nothing to claim.
            row = (await s.execute(_CLAIM, {"f": folder_id, "upto": upto})).first()
            return upto if row is None else int(row[0])
        row = (await s.execute(_LOCK_FOLDER, {"f": folder_id})).first()
        if row is None:
            raise NotFound("no such folder")
        previous = int(row[0] or 0)
        if upto > previous:
            await s.execute(update(_FT).where(_FT.c.id == folder_id).values(recent_uid=upto))
        return previous

    async def keywords(self, folder: FolderInfo) -> str:
        """The keywords used in a folder, space-separated (SELECT's FLAGS response).

        A folder that has not recorded them yet (created before the column existed) gets them
        derived from its messages and recorded, best-effort.
        """
        if folder.keywords is not None:
            return folder.keywords

        async def op(s: AsyncSession) -> str:
            row = (await s.execute(_LOCK_FOLDER, {"f": folder.id})).first()
            if row is None:
                raise NotFound("no such folder")
            if row[1] is not None:
                return str(row[1])
            found = await derive_keywords(s, folder.id)
            await s.execute(update(_FT).where(_FT.c.id == folder.id).values(keywords=found))
            return found

        try:
            return await self.db.write(op, locks=(account_lock(folder.account_id),),
                                       durable=False)  # derived from the messages: a cache
        except StoreError as exc:  # a read does not depend on recording them
            log.warning("imapmeta: keywords not recorded: %s", exc)
            async with self.db.reader() as s:
                return await derive_keywords(s, folder.id)

    async def rows(self, folder_id: int, uids: Sequence[int], *,
                   sealed: dict[int, bytes | None] | None = None) -> list[Row]:
        """Rows of the given UIDs (those that still exist), in UID order. With ``sealed``,
        their sealed summaries are read by the same statement into it (by message id), for
        :meth:`metas`: one round trip instead of two."""
        out: list[Row] = []
        pg = self.db.direct is not None
        ranged, listed = ((_ROWS_RANGE, _ROWS_ANY if pg else _ROWS_IN) if sealed is None
                          else (_ROWS_RANGE_META, _ROWS_ANY_META if pg else _ROWS_IN_META))
        async with self.db.read() as s:
            for chunk in _chunks(uids):
                lo, hi = min(chunk), max(chunk)
                dense = hi - lo + 1 <= 4 * len(chunk)
                if dense:  # a range scan on (folder_id, uid) beats a long IN list
                    result = (await s.execute(ranged, {"f": folder_id, "lo": lo,
                                                       "hi": hi})).all()
                else:
                    result = (await s.execute(listed, {"f": folder_id,
                                                       "u": list(chunk)})).all()
                if dense and hi - lo + 1 != len(chunk):
                    keep = set(chunk)
                    result = [r for r in result if r[1] in keep]
                out.extend(_row(r) for r in result)
                if sealed is not None:
                    sealed.update((r[0], r[7]) for r in result)
        return out

    async def rows_by_id(self, ids: Sequence[int]) -> list[Row]:
        """Rows by message id (those still present), in id order."""
        async with self.db.reader() as s:
            rows = (await s.execute(select(*_ROW_COLS).where(Message.id.in_(list(ids)))
                                    .order_by(Message.id))).all()
        return [_row(r) for r in rows]

    async def all_rows(self, folder_id: int) -> list[Row]:
        """Every row of a folder in UID order, in one streamed statement (SORT/THREAD ALL)."""
        async with self.db.reader() as s:
            conn = await s.connection()  # Core: no ORM row processing for 100,000 rows
            result = await conn.execute(_ALL_ROWS, {"f": folder_id})
            return [_row(r) for r in result.all()]

    async def rows_changed_since(self, folder_id: int, modseq: int) -> list[Row]:
        """Rows whose modseq is above ``modseq`` (CHANGEDSINCE), via the modseq index."""
        async with self.db.reader() as s:
            rows = (await s.execute(select(*_ROW_COLS).where(
                Message.folder_id == folder_id, Message.modseq > modseq
            ).order_by(Message.uid))).all()
        return [_row(r) for r in rows]

    async def vanished(self, folder_id: int, modseq: int,
                       ranges: Sequence[tuple[int, int]] | None = None) -> list[int]:
        """UIDs expunged after ``modseq`` (within ``ranges``): QRESYNC's VANISHED (EARLIER)."""
        return await vanished_since(self.db, folder_id, modseq, ranges)

    async def count_above(self, folder_id: int, uid: int) -> int:
        """Messages with a UID above ``uid`` (STATUS RECENT: above the \\Recent mark)."""
        async with self.db.read() as s:
            return int((await s.execute(select(func.count()).select_from(Message).where(
                Message.folder_id == folder_id, Message.uid > uid))).scalar_one())

    async def size_and_deleted(self, folder_id: int) -> tuple[int, int]:
        """Total size of the messages and how many have \\Deleted (STATUS SIZE, RFC 8438;
        STATUS DELETED, RFC 9051 6.3.11), in one pass."""
        async with self.db.session() as s:
            size, deleted = (await s.execute(select(
                func.coalesce(func.sum(Message.size), 0),
                func.coalesce(func.sum(case((Message.flags.contains("\\Deleted"), 1),
                                            else_=0)), 0),
            ).where(Message.folder_id == folder_id))).one()
        return int(size), int(deleted)

    async def raw(self, message_id: int) -> bytes:
        """Decrypted message octets."""
        return await self.store.read_raw(message_id)

    async def raws(self, message_ids: Sequence[int]) -> dict[int, bytes]:
        """Decrypted octets of several messages, one query (those gone are left out)."""
        return await self.store.read_raws(message_ids)

    async def sealed_summary(self, account_id: int, storage_key: str, raw: bytes,
                             codec: SummaryCodec[T]) -> bytes | None:
        """The sealed summary of a message about to be stored (APPEND), as :meth:`metas`
        would cache it; None if it cannot be computed (then it is built at first use)."""
        try:
            summary = codec.dumps(codec.of(raw))
        except Exception:  # noqa: BLE001 - a cache: never fail the append for it
            log.warning("imapmeta: summary not built at append")
            return None
        return await self.keys.seal(account_id, summary, _aad(account_id, storage_key))

    async def metas(self, account_id: int, rows: Iterable[Row], codec: SummaryCodec[T], *,
                    sealed: dict[int, bytes | None] | None = None) -> dict[int, T]:
        """Summaries by message id; computes and caches (sealed) the missing ones.
        ``sealed``: the sealed summaries already read with the rows (:meth:`rows`).

        Messages that disappeared meanwhile are left out of the result.
        """
        wanted = {r.id: r for r in rows}
        out: dict[int, T] = {}
        if not wanted:
            return out
        found: list[tuple[int, bytes | None]] = []
        if sealed is not None:
            found.extend((i, sealed[i]) for i in wanted if i in sealed)
        ids = [i for i in wanted if sealed is None or i not in sealed]
        if ids:
            async with self.db.read() as s:
                for chunk in _chunks(ids):
                    found.extend((r[0], r[1]) for r in (await s.execute(
                        _METAS, {"ids": list(chunk)})).all())
        missing: list[tuple[int, bytes]] = []
        if found:
            await self.keys.get(account_id)  # shredded or closed: no answer from the cache
        unbuilt: list[int] = []
        for mid, blob in found:
            if blob is not None:
                hit = self.summaries.get(codec, blob)
                if hit is not None:
                    out[mid] = cast(T, hit)
                    continue
                try:
                    out[mid] = codec.loads(await self.keys.unseal(
                        account_id, blob, _aad(account_id, wanted[mid].storage_key)))
                    self.summaries.put(codec, blob, out[mid])
                    continue
                except Exception:  # noqa: BLE001 - stale or corrupt cache: recompute
                    log.warning("imapmeta: unreadable cached summary, recomputing")
            unbuilt.append(mid)
        for part in _chunks(unbuilt, _RAW_BATCH):
            raws = await self.raws(part)  # one query a batch; expunged meanwhile: left out
            for mid in part:
                if (raw := raws.get(mid)) is None:
                    continue
                meta = codec.of(raw)
                out[mid] = meta
                missing.append((mid, await self.keys.seal(
                    account_id, codec.dumps(meta), _aad(account_id, wanted[mid].storage_key))))
        if missing:
            async def op(s: AsyncSession) -> None:  # one executemany: one round trip
                await s.execute(_SET_META, [{"i": mid, "b": blob} for mid, blob in missing])

            try:
                await self.db.write(op, locks=(account_lock(account_id),),
                                    durable=False)  # summaries: a cache, rebuilt if lost
            except StoreError as exc:  # the cache is an optimisation: serve what we computed
                log.warning("imapmeta: summary cache not written (%d messages): %s",
                            len(missing), exc)
        return out


_RAW_BATCH = 32
"""Messages read at once to build their summaries (their octets are held together)."""


def _chunks(items: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
