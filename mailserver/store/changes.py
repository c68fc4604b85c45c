"""Set-based changes of a folder's messages: STORE (flags), EXPUNGE and COPY.

Each is a group-committed op of few statements whatever the number of messages, in Core (no
ORM objects, no per-row flush): on PostgreSQL every statement is a round trip.

- **flags**: one ``SELECT ... FROM folders JOIN messages ... FOR UPDATE`` locks the folder
  (first, as every writer of a folder does) and the messages and reads their flags; the new
  flags and modseqs are computed here; one executemany ``UPDATE messages`` (one round trip
  with asyncpg) and one ``UPDATE folders`` write them.
- **expunge**: a read answers an EXPUNGE with nothing flagged ``\\Deleted`` (no write, no
  lock); otherwise the folder is locked, ``DELETE ... RETURNING`` removes the messages and
  tells what went, and one ``UPDATE folders`` adjusts the counts and the modseq.
- **copy**: the folders are locked by one statement, the source messages' UIDs and flags read,
  and the copies made by one ``INSERT ... SELECT`` in the database (the sealed content never
  travels through Python), their new UIDs numbered in UID order from ``uidnext``.

``\\Deleted`` is matched as a whole flag in SQL: flags are stored normalised (sorted, one space
between them), so ``' ' || flags || ' ' LIKE '% \\Deleted %'`` (with ``!`` as the escape
character, so the backslash is literal on PostgreSQL too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Insert,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningDelete

from mailserver.errors import NotFound
from mailserver.store.audit import AuditHook
from mailserver.store.conversations import CONVERSATION_FOLDERS, Conversations
from mailserver.store.db import Database, Reader
from mailserver.store.events import MailboxEvents
from mailserver.store.models import Folder, Message
from mailserver.store.records import (
    SEEN,
    MessageInfo,
    chunks,
    keywords_of,
    merge_keywords,
    normalise_flags,
    utc,
)
from mailserver.store.vanished import ExpungedUid, record_in

__all__ = ["store_flags_in", "has_deleted", "expunge_in", "copy_in", "DELETED_FLAG",
           "derive_keywords", "new_keywords"]

_FT = cast(Table, Folder.__table__)
_MT = cast(Table, Message.__table__)
_ET = cast(Table, ExpungedUid.__table__)

DELETED_FLAG = (literal(" ") + _MT.c.flags + literal(" ")).like("% \\Deleted %", escape="!")
"""The message has the ``\\Deleted`` flag (a whole flag, not a part of another)."""

_FLAGGED_ROWS = (
    select(_FT.c.name, _FT.c.account_id, _FT.c.highestmodseq, _FT.c.keywords,
           _MT.c.id, _MT.c.uid, _MT.c.modseq, _MT.c.flags, _MT.c.internaldate, _MT.c.size,
           _MT.c.conversation_id)
    .select_from(_FT.join(_MT, _MT.c.folder_id == _FT.c.id))
    .where(_FT.c.id == bindparam("f"), _MT.c.uid.in_(bindparam("u", expanding=True)))
    .order_by(_MT.c.uid).with_for_update())
_LOCK_FOLDER = select(_FT.c.name, _FT.c.account_id, _FT.c.highestmodseq, _FT.c.keywords,
                      _FT.c.uidnext).where(_FT.c.id == bindparam("f")).with_for_update()
_SET_FLAGS = update(_MT).where(_MT.c.id == bindparam("i")).values(
    flags=bindparam("fl"), modseq=bindparam("ms"))
_FOLDER_FLAGGED = update(_FT).where(_FT.c.id == bindparam("f")).values(
    highestmodseq=bindparam("h"), unseen_count=_FT.c.unseen_count + bindparam("du"))
_FOLDER_FLAGGED_KW = _FOLDER_FLAGGED.values(keywords=bindparam("k"))
_NEW_FLAGS = func.unnest(
    bindparam("ids", type_=ARRAY(BigInteger)), bindparam("fls", type_=ARRAY(Text)),
    bindparam("mss", type_=ARRAY(BigInteger))).table_valued("id", "fl", "ms").render_derived(
    name="v")
# PostgreSQL: the messages' and the folder's UPDATEs in one statement (one round trip).
_FLAGGED_IN_ONE = _FOLDER_FLAGGED.values(
    keywords=func.coalesce(bindparam("k", type_=Text), _FT.c.keywords)).add_cte(
    update(_MT).where(_MT.c.id == _NEW_FLAGS.c.id)
    .values(flags=_NEW_FLAGS.c.fl, modseq=_NEW_FLAGS.c.ms).cte("m"))
_HAS_DELETED = select(_FT.c.id, exists().where(_MT.c.folder_id == _FT.c.id, DELETED_FLAG)
                      ).where(_FT.c.id == bindparam("f"))
# The inline content's size, -1 if in the blob store (SQLite 3.40 answers ``content_enc IS
# NULL`` wrongly in a DELETE's RETURNING).
_SIZE_IF_INLINE = func.coalesce(func.length(_MT.c.content_enc), -1)
_EXPUNGE = (delete(_MT).where(_MT.c.folder_id == bindparam("f"), DELETED_FLAG)
            .returning(_MT.c.uid, _MT.c.flags, _MT.c.blob_key,
                       _SIZE_IF_INLINE.label("inline"), _MT.c.conversation_id))
_EXPUNGE_UIDS = _EXPUNGE.where(_MT.c.uid.in_(bindparam("u", expanding=True)))


def _expunge_in_one(expunge: ReturningDelete[Any, Any, Any, Any, Any]) -> Select[Any]:
    """PostgreSQL: ``expunge`` (a ``DELETE ... RETURNING``), the folder's counts and modseq
    (``h``) and the tombstones of the UIDs (:mod:`.vanished`) in one statement (the folder
    row is locked first, by the caller): ``WITH d AS (DELETE ...), u AS (UPDATE folders ...),
    e AS (INSERT INTO expunged_uids ...) SELECT * FROM d``."""
    d = expunge.cte("d")
    unseen = ~(literal(" ") + d.c.flags + literal(" ")).like("% \\Seen %", escape="!")
    folder = (update(_FT).where(_FT.c.id == bindparam("f"), select(d.c.uid).exists())
              .values(highestmodseq=bindparam("h"),
                      message_count=_FT.c.message_count
                      - select(func.count()).select_from(d).scalar_subquery(),
                      unseen_count=_FT.c.unseen_count - select(func.count()).select_from(d)
                      .where(unseen).scalar_subquery()))
    tombstones = insert(_ET).from_select(
        ["folder_id", "uid", "modseq"],
        select(bindparam("ef", type_=BigInteger), d.c.uid, bindparam("eh", type_=BigInteger)))
    return (select(d.c.uid, d.c.flags, d.c.blob_key, d.c.inline, d.c.conversation_id)
            .add_cte(folder.cte("u")).add_cte(tombstones.cte("e")))


_EXPUNGE_IN_ONE = _expunge_in_one(_EXPUNGE)
_EXPUNGE_UIDS_IN_ONE = _expunge_in_one(_EXPUNGE_UIDS)
_FOLDER_EXPUNGED = update(_FT).where(_FT.c.id == bindparam("f")).values(
    highestmodseq=bindparam("h"), message_count=_FT.c.message_count - bindparam("n"),
    unseen_count=_FT.c.unseen_count - bindparam("un"))
_FOLDER_EXISTS = select(_FT.c.id).where(_FT.c.id == bindparam("f"))


_FOLDER_FLAGS = select(_MT.c.flags).where(_MT.c.folder_id == bindparam("f"),
                                          _MT.c.flags != "").distinct()


async def derive_keywords(s: AsyncSession | AsyncConnection | Reader, folder_id: int) -> str:
    """The keywords present on a folder's messages, space-separated (for a folder whose
    ``keywords`` column is still NULL)."""
    found: set[str] = set()
    for flags in (await s.execute(_FOLDER_FLAGS, {"f": folder_id})).scalars():
        found |= keywords_of(flags.split())
    return " ".join(sorted(found))


async def new_keywords(s: AsyncSession, folder_id: int, recorded: str | None,
                       flags: Iterable[str]) -> str | None:
    """The folder's new ``keywords`` column if ``flags`` bring new keywords (the folder row
    is locked by the caller; the messages are written): a folder still at NULL gets the full
    set derived from its messages. None: unchanged."""
    if not keywords_of(flags):
        return None
    if recorded is None:
        return await derive_keywords(s, folder_id)
    return merge_keywords(recorded, flags)


async def store_flags_in(s: AsyncSession, events: MailboxEvents, folder_id: int,
                         uids: Sequence[int], flags: Iterable[str], mode: str,
                         unchanged_since: int | None, audit: AuditHook | None,
                         origin: asyncio.Event | None = None
                         ) -> tuple[list[MessageInfo], list[int]]:
    """:meth:`MailStore.store_flags` inside the caller's transaction."""
    wanted = set(normalise_flags(flags).split())
    changed: list[MessageInfo] = []
    failed: list[int] = []
    unread_delta: dict[int, int] = {}  # conversation id -> change of its unread count
    updates: list[dict[str, object]] = []
    folder: tuple[str, int, int, str | None] | None = None
    highest = unseen_delta = 0
    for chunk in chunks(list(uids), 500):
        for (name, account_id, folder_highest, keywords, mid, uid, modseq, old_text, when,
             size, conv) in (await s.execute(_FLAGGED_ROWS, {"f": folder_id, "u": chunk})):
            if folder is None:
                folder, highest = (name, account_id, folder_highest, keywords), folder_highest
            if unchanged_since is not None and modseq > unchanged_since:
                failed.append(uid)
                continue
            old = set(old_text.split())
            new = set(wanted) if mode == "set" else (old | wanted if mode == "add"
                                                     else old - wanted)
            if new == old:
                continue
            highest += 1
            updates.append({"i": mid, "fl": normalise_flags(new), "ms": highest})
            if (SEEN in old) != (SEEN in new):
                unseen_delta += -1 if SEEN in new else 1
                if conv is not None and name == "INBOX":
                    unread_delta[conv] = unread_delta.get(conv, 0) + (-1 if SEEN in new else 1)
            changed.append(MessageInfo(mid, folder_id, uid, highest, frozenset(new), utc(when),
                                       size, conv))
    if folder is None:  # no such message (any more): the folder must still exist
        if (await s.execute(_FOLDER_EXISTS, {"f": folder_id})).first() is None:
            raise NotFound("no such folder")
    if updates:
        assert folder is not None
        for cid, delta in sorted(unread_delta.items()):
            if delta:
                await Conversations.count_in(s, cid, total=0, unread=delta)
        params = {"f": folder_id, "h": highest, "du": unseen_delta}
        if folder[3] is not None and s.get_bind().dialect.name == "postgresql":
            await s.execute(_FLAGGED_IN_ONE, {
                **params, "k": merge_keywords(folder[3], [fl for m in changed for fl in m.flags]),
                "ids": [u["i"] for u in updates], "fls": [u["fl"] for u in updates],
                "mss": [u["ms"] for u in updates]})
        else:
            await s.execute(_SET_FLAGS, updates)
            keywords = await new_keywords(s, folder_id, folder[3],
                                              [fl for m in changed for fl in m.flags])
            if keywords is None:
                await s.execute(_FOLDER_FLAGGED, params)
            else:
                await s.execute(_FOLDER_FLAGGED_KW, {**params, "k": keywords})
        events.changed_in(s, folder[1], origin=origin)
    if audit is not None:
        await audit.record_in(s, [m.uid for m in changed])
    return changed, failed


async def has_deleted(db: Database, folder_id: int) -> bool:
    """Whether a folder has messages flagged ``\\Deleted`` (one read, no lock).

    Raises:
        NotFound: no such folder.
    """
    async with db.reader() as s:
        row = (await s.execute(_HAS_DELETED, {"f": folder_id})).first()
    if row is None:
        raise NotFound("no such folder")
    return bool(row[1])


async def expunge_in(s: AsyncSession, events: MailboxEvents, folder_id: int,
                     uids: Sequence[int] | None, audit: AuditHook | None,
                     blob_keys: list[str], origin: asyncio.Event | None = None) -> list[int]:
    """:meth:`MailStore.expunge` inside the caller's transaction; the storage keys of the
    removed messages stored as blobs are added to ``blob_keys``."""
    locked = (await s.execute(_LOCK_FOLDER, {"f": folder_id})).first()
    if locked is None:
        raise NotFound("no such folder")
    name, account_id, highest = locked[0], locked[1], locked[2]
    rows: list[Any] = []
    pg = s.get_bind().dialect.name == "postgresql" and (uids is None or len(uids) <= 500)
    one = {"h": highest + 1, "ef": folder_id, "eh": highest + 1} if pg else {}
    if uids is None:
        rows.extend(await s.execute(_EXPUNGE_IN_ONE if pg else _EXPUNGE, {"f": folder_id, **one}))
    else:
        for chunk in chunks(sorted(set(uids)), 500):
            rows.extend(await s.execute(_EXPUNGE_UIDS_IN_ONE if pg else _EXPUNGE_UIDS,
                                        {"f": folder_id, "u": chunk, **one}))
    rows.sort(key=lambda r: r[0])
    gone = [r[0] for r in rows]
    if gone:
        blob_keys.extend(r[2] for r in rows if r[3] < 0)
        convs = {r[4] for r in rows if r[4] is not None}
        if not pg:  # else done by the same statement
            unseen = sum(1 for r in rows if SEEN not in r[1].split())
            await s.execute(_FOLDER_EXPUNGED, {"f": folder_id, "h": highest + 1,
                                               "n": len(gone), "un": unseen})
            await record_in(s, folder_id, gone, highest + 1)  # RFC 7162 3.2.5
        if convs and name in CONVERSATION_FOLDERS:
            await Conversations.recount_in(s, convs)
        events.changed_in(s, account_id, origin=origin)
    if audit is not None:
        await audit.record_in(s, gone)
    return gone


# The source and destination folders, locked, with the source messages' UIDs and flags.
_COPY_SOURCE = (
    select(_FT.c.id, _FT.c.name, _FT.c.account_id, _FT.c.uidnext, _FT.c.highestmodseq,
           _FT.c.keywords, _MT.c.uid, _MT.c.flags, _MT.c.conversation_id)
    .select_from(_FT.outerjoin(_MT, (_MT.c.folder_id == _FT.c.id)
                               & (_FT.c.id == bindparam("f"))
                               & _MT.c.uid.in_(bindparam("u", expanding=True))))
    .where(_FT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_FT.c.id, _MT.c.uid).with_for_update(of=_FT))
_COPIED = ("account_id", "internaldate", "size", "content_enc", "blob_key", "content_key_enc",
           "subject_enc", "from_enc", "meta_enc", "message_id_hash", "conversation_id",
           "sent_date", "flags")


def _copy_rows() -> Insert:
    """``INSERT INTO messages ... SELECT`` of the source messages ``u`` into folder ``d``:
    the k-th (in UID order) gets UID ``base + k`` and modseq ``mbase + k``."""
    rank = func.row_number().over(order_by=_MT.c.uid)
    src = select(*[_MT.c[c] for c in _COPIED],
                 bindparam("d", type_=Integer).label("folder_id"),
                 (bindparam("base", type_=BigInteger) + rank).label("uid"),
                 (bindparam("mbase", type_=BigInteger) + rank).label("modseq")
                 ).where(_MT.c.folder_id == bindparam("f"),
                         _MT.c.uid.in_(bindparam("u", expanding=True)))
    return insert(_MT).from_select([*_COPIED, "folder_id", "uid", "modseq"], src)


_COPY_ROWS = _copy_rows()
_FOLDER_COPIED = update(_FT).where(_FT.c.id == bindparam("f")).values(
    uidnext=_FT.c.uidnext + bindparam("n"), highestmodseq=_FT.c.highestmodseq + bindparam("n"),
    message_count=_FT.c.message_count + bindparam("n"),
    unseen_count=_FT.c.unseen_count + bindparam("un"))
_FOLDER_COPIED_KW = _FOLDER_COPIED.values(keywords=bindparam("k"))


async def copy_in(s: AsyncSession, events: MailboxEvents, src_id: int, uids: Sequence[int],
                  dst_id: int, audit: AuditHook | None) -> list[tuple[int, int]]:
    """:meth:`MailStore.copy` (not move) inside the caller's transaction."""
    folders: dict[int, Any] = {}
    pairs: list[tuple[int, int]] = []
    flags: list[str] = []
    unseen = 0
    convs: set[int] = set()
    for chunk in chunks(sorted(set(uids)), 500):
        rows = (await s.execute(_COPY_SOURCE, {"f": src_id, "u": chunk,
                                               "ids": sorted({src_id, dst_id})})).all()
        folders = folders or {r[0]: r for r in rows}
        src, dst = folders.get(src_id), folders.get(dst_id)
        if src is None or dst is None or src[2] != dst[2]:
            raise NotFound("no such folder")
        copied = [(r[6], r[7], r[8]) for r in rows if r[0] == src_id and r[6] is not None]
        if not copied:
            continue
        uidnext, highest = dst[3], dst[4]
        await s.execute(_COPY_ROWS, {"f": src_id, "u": chunk, "d": dst_id,
                                     "base": uidnext + len(pairs) - 1,
                                     "mbase": highest + len(pairs)})
        for uid, fl, conv in copied:
            pairs.append((uid, uidnext + len(pairs)))
            flags.extend(fl.split())
            unseen += SEEN not in fl.split()
            if conv is not None:
                convs.add(conv)
    if pairs:
        src, dst = folders[src_id], folders[dst_id]
        keywords = await new_keywords(s, dst_id, dst[5], flags)
        params = {"f": dst_id, "n": len(pairs), "un": unseen}
        if keywords is None:
            await s.execute(_FOLDER_COPIED, params)
        else:
            await s.execute(_FOLDER_COPIED_KW, {**params, "k": keywords})
        if convs and (src[1] in CONVERSATION_FOLDERS or dst[1] in CONVERSATION_FOLDERS):
            await Conversations.recount_in(s, convs)
        events.changed_in(s, dst[2])
    if audit is not None:
        await audit.record_in(s, [old for old, _ in pairs])
    return pairs
