"""The mail store: folders, messages and flags of accounts, sealed at rest.

Messages are kept as the exact received octets (RFC 5322), sealed with the account's data key.
Up to ``inline_max`` bytes the ciphertext sits in the database row (one commit, no extra fsync);
larger messages go to the blob store, written and fsync'd before the row commits. Every message
has a random ``blob_key`` (its storage key) that is also part of the associated data of its
ciphertexts, so ciphertexts cannot be swapped between messages. COPY shares the storage key;
a blob is deleted when the last row using it is expunged.

UIDs come from ``folders.uidnext`` and only grow; each change bumps ``folders.highestmodseq`` and
stamps the message's ``modseq`` (RFC 7162). Reads never load more than they are asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mailserver.errors import NotFound
from mailserver.store.audit import AuditHook
from mailserver.store.blobs import BlobStore, new_blob_key
from mailserver.store.changes import (
    copy_in,
    expunge_in,
    has_deleted,
    new_keywords,
    store_flags_in,
)
from mailserver.store.conversations import CONVERSATION_FOLDERS, Conversations
from mailserver.store.crypto import new_data_key, seal, unseal
from mailserver.store.db import Database, account_lock
from mailserver.store.direct import direct
from mailserver.store.events import MailboxEvents
from mailserver.store.folders import FolderOps
from mailserver.store.keys import KeyManager
from mailserver.store.models import Folder, Message
from mailserver.store.records import (
    DEFAULT_FOLDERS,
    SEEN,
    AppendItem,
    AppendResult,
    FolderInfo,
    MessageInfo,
    Prepared,
    SharedContent,
    as_utc,
    chunks,
    keywords_of,
    merge_keywords,
    message_id_hash,
    normalise_flags,
    utc,
)
from mailserver.store.vanished import record_in

__all__ = [
    "MailStore",
    "AppendHook",
    "FolderInfo",
    "MessageInfo",
    "Prepared",
    "SharedContent",
    "AppendResult",
    "AppendItem",
    "DEFAULT_FOLDERS",
    "message_id_hash",
    "normalise_flags",
]

# Prebuilt statements of the append hot path (built once: SQLAlchemy memoises their cache key).
Summariser = Callable[[Prepared, bytes], Awaitable[bytes | None]]
"""(prepared message, its octets) -> its sealed IMAP summary cache, or None."""

_FT = cast(Table, Folder.__table__)
_ALLOC_VALUES = {
    "uidnext": _FT.c.uidnext + 1,
    "highestmodseq": _FT.c.highestmodseq + 1,
    "message_count": _FT.c.message_count + 1,
    "unseen_count": _FT.c.unseen_count + bindparam("u"),
}
_ALLOC_RETURNING = (_FT.c.id, _FT.c.uidnext, _FT.c.highestmodseq, _FT.c.uidvalidity,
                    _FT.c.keywords)
_ALLOC_BY_NAME = (update(_FT).where(_FT.c.account_id == bindparam("a"),
                                    _FT.c.name == bindparam("n"))
                  .values(_ALLOC_VALUES).returning(*_ALLOC_RETURNING))
_ALLOC_BY_ID = (update(_FT).where(_FT.c.account_id == bindparam("a"), _FT.c.id == bindparam("f"))
                .values(_ALLOC_VALUES).returning(*_ALLOC_RETURNING))
_SET_KEYWORDS = update(_FT).where(_FT.c.id == bindparam("f")).values(keywords=bindparam("k"))
_MT = cast(Table, Message.__table__)
_INSERT_MESSAGE = insert(_MT).returning(_MT.c.id)
_INSERT_COLUMNS = ("account_id", "folder_id", "uid", "modseq", "flags", "internaldate", "size",
                   "content_enc", "blob_key", "subject_enc", "from_enc", "meta_enc",
                   "message_id_hash", "conversation_id", "sent_date", "content_key_enc")


def _append_in_one(alloc: Update) -> Select[Any]:
    """PostgreSQL: the UID allocation ``alloc`` and the INSERT in one statement (one round trip
    instead of two; SQLite allows no RETURNING in a WITH clause): ``WITH f AS (UPDATE folders
    ... RETURNING), m AS (INSERT INTO messages SELECT ... FROM f RETURNING) SELECT``."""
    f = alloc.cte("f")
    computed = {"folder_id": f.c.id, "uid": f.c.uidnext - 1, "modseq": f.c.highestmodseq}
    # Bind names distinct from the folders' columns: an UPDATE takes a parameter named like
    # one of its table's columns as a value to SET.
    values = [computed.get(c, bindparam(f"m_{c}", type_=_MT.c[c].type)) for c in _INSERT_COLUMNS]
    m = (insert(_MT).from_select(list(_INSERT_COLUMNS), select(*values).select_from(f))
         .returning(_MT.c.id, _MT.c.folder_id, _MT.c.uid).cte("m"))
    return (select(m.c.id, m.c.folder_id, m.c.uid, f.c.uidvalidity)
            .select_from(m.join(f, f.c.id == m.c.folder_id)))


_APPEND_BY_NAME = _append_in_one(_ALLOC_BY_NAME)
_APPEND_BY_ID = _append_in_one(_ALLOC_BY_ID)
def _shared_aad(storage_key: str) -> bytes:
    return f"msg-shared:{storage_key}".encode()


def _aad(kind: str, account_id: int, storage_key: str) -> bytes:
    return f"{kind}:{account_id}:{storage_key}".encode()


AppendHook = Callable[[AsyncSession, list[AppendResult]], Awaitable[None]]
"""Run inside an append's transaction once its messages are added (``append_many(then=)``)."""

_CONTENT_COLS = (Message.id, Message.account_id, Message.blob_key, Message.content_enc,
                 Message.content_key_enc)
_CONTENT_IN = select(*_CONTENT_COLS).where(Message.id.in_(bindparam("ids", expanding=True)))
_CONTENT_ANY = direct(select(*_CONTENT_COLS).where(  # PostgreSQL: ids as one array
    Message.id == func.any(bindparam("ids", type_=ARRAY(BigInteger)))))


async def _allocate_in(conn: AsyncConnection, params: Mapping[str, object], folder: str | int,
                       flag_text: str) -> tuple[int, int, int, int]:
    """Allocate the next UID of ``folder`` (id or name) and record the keywords of
    ``flag_text`` on it: (folder id, uid, modseq, uidvalidity)."""
    if isinstance(folder, int):
        row = (await conn.execute(_ALLOC_BY_ID, {**params, "f": folder})).first()
    else:
        row = (await conn.execute(_ALLOC_BY_NAME, {**params, "n": folder})).first()
    if row is None:
        raise NotFound(f"no folder {folder!r}")
    folder_id, uidnext, modseq, uidvalidity, recorded = row
    if (merged := merge_keywords(recorded, flag_text.split())) is not None:
        await conn.execute(_SET_KEYWORDS, {"f": folder_id, "k": merged})
    return folder_id, uidnext - 1, modseq, uidvalidity


class MailStore(FolderOps):
    """Repository of folders and messages. Knows nothing of protocols."""

    def __init__(self, db: Database, keys: KeyManager, blobs: BlobStore, *,
                 inline_max: int = 128 * 1024, events: MailboxEvents | None = None) -> None:
        self.db = db
        self.keys = keys
        self.blobs = blobs
        self.inline_max = inline_max
        self.events = events or MailboxEvents()

    # -- folders ----------------------------------------------------------------------------

    async def share(self, raw: bytes) -> SharedContent:
        """Seal and write a large message once, for several :meth:`prepare` calls."""
        shared = SharedContent(new_blob_key(), new_data_key())
        await self.blobs.put(shared.storage_key, seal(
            shared.content_key, raw, _shared_aad(shared.storage_key)))
        return shared

    async def prepare(self, account_id: int, raw: bytes, *, subject: str | None = None,
                      from_display: str | None = None, message_id: str | None = None,
                      sent_date: datetime | None = None,
                      shared: SharedContent | None = None) -> Prepared:
        """Seal a message for ``account_id`` (and write its blob if large). No transaction.

        With ``shared`` (from :meth:`share`), the content is the shared blob and only its key is
        sealed for this account.
        """
        key = await self.keys.get(account_id)
        content_key_enc: bytes | None = None
        inline: bytes | None
        if shared is not None:
            storage_key = shared.storage_key
            inline = None
            content_key_enc = seal(key, shared.content_key, _aad("ck", account_id, storage_key))
        else:
            storage_key = new_blob_key()
            content = seal(key, raw, _aad("msg", account_id, storage_key))
            inline = content
            if len(raw) > self.inline_max:
                await self.blobs.put(storage_key, content)
                inline = None
        return Prepared(
            account_id=account_id,
            size=len(raw),
            storage_key=storage_key,
            content_enc=inline,
            subject_enc=(seal(key, subject.encode(), _aad("subj", account_id, storage_key))
                         if subject is not None else None),
            from_enc=(seal(key, from_display.encode(), _aad("from", account_id, storage_key))
                      if from_display is not None else None),
            message_id_hash=message_id_hash(message_id) if message_id else None,
            sent_date=sent_date,
            content_key_enc=content_key_enc,
        )

    async def append_in(self, s: AsyncSession, prepared: Prepared, folder: str | int, *,
                        flags: Iterable[str] = (), internaldate: datetime | None = None,
                        conversation_id: int | None = None) -> AppendResult:
        """Append a prepared message inside the caller's transaction.

        ``UPDATE folders ... RETURNING`` allocates the UID (and, on PostgreSQL, row-locks the
        folder until commit, so concurrent appends serialise correctly), then ``INSERT ...
        RETURNING id``: two statements on SQLite, one on PostgreSQL (:func:`_append_in_one`;
        a flag that is a keyword takes the two-statement way, which records it on the folder).
        This is the hot path of SMTP acceptance.
        """
        flag_text = normalise_flags(flags)
        params = {"a": prepared.account_id, "u": 0 if SEEN in flag_text.split() else 1}
        name = folder if isinstance(folder, int) else (
            "INBOX" if folder.upper() == "INBOX" else folder)
        values = {
            "account_id": prepared.account_id, "flags": flag_text,
            "internaldate": as_utc(internaldate), "size": prepared.size,
            "content_enc": prepared.content_enc, "blob_key": prepared.storage_key,
            "subject_enc": prepared.subject_enc, "from_enc": prepared.from_enc,
            "meta_enc": prepared.meta_enc, "message_id_hash": prepared.message_id_hash,
            "conversation_id": conversation_id, "sent_date": prepared.sent_date,
            "content_key_enc": prepared.content_key_enc,
        }
        conn = await s.connection()
        if not self.db.is_sqlite and not keywords_of(flag_text.split()):
            row = (await conn.execute(
                _APPEND_BY_ID if isinstance(name, int) else _APPEND_BY_NAME,
                {**params, **{f"m_{k}": v for k, v in values.items()},
                 ("f" if isinstance(name, int) else "n"): name})).first()
            if row is None:
                raise NotFound(f"no folder {folder!r}")
            message_id, folder_id, uid, uidvalidity = row
        else:
            folder_id, uid, modseq, uidvalidity = await _allocate_in(conn, params, name,
                                                                     flag_text)
            message_id = (await conn.execute(_INSERT_MESSAGE, {
                **values, "folder_id": folder_id, "uid": uid, "modseq": modseq})).scalar_one()
        if conversation_id is not None:
            # The inbox index counts this message in the same transaction.
            if isinstance(folder, int):
                await Conversations.recount_in(s, [conversation_id])
            elif name in CONVERSATION_FOLDERS:
                await Conversations.count_in(s, conversation_id, total=1,
                                             unread=1 if name == "INBOX" and params["u"] else 0)
        account_id = prepared.account_id
        self.events.changed_in(s, account_id)
        return AppendResult(message_id, folder_id, uidvalidity, uid)

    async def append(self, account_id: int, folder: str | int, raw: bytes, *,
                     flags: Iterable[str] = (), internaldate: datetime | None = None,
                     subject: str | None = None, from_display: str | None = None,
                     message_id: str | None = None, conversation_id: int | None = None,
                     ) -> AppendResult:
        """Seal and append one message durably (group-committed)."""
        prepared = await self.prepare(account_id, raw, subject=subject,
                                      from_display=from_display, message_id=message_id)

        async def op(s: AsyncSession) -> AppendResult:
            return await self.append_in(s, prepared, folder, flags=flags,
                                        internaldate=internaldate,
                                        conversation_id=conversation_id)

        return await self.db.write(op, locks=_locks(account_id))

    async def append_many(self, account_id: int, folder_id: int,
                          messages: Sequence[AppendItem], *, audit: AuditHook | None = None,
                          summarise: Summariser | None = None,
                          then: AppendHook | None = None) -> list[AppendResult]:
        """Seal and append several messages in one transaction: all are stored or none
        (IMAP MULTIAPPEND, RFC 3502), with ``audit``'s rows. ``summarise`` (prepared message,
        octets) gives each one's sealed summary cache, stored with it (None: built later).
        ``then`` runs in the same transaction once they are added (IMAP: the \\Recent claim
        of the appending session)."""
        prepared = [await self.prepare(account_id, m.raw, subject=m.subject,
                                       from_display=m.from_display, message_id=m.message_id)
                    for m in messages]
        if summarise is not None:
            prepared = [replace(p, meta_enc=await summarise(p, m.raw))
                        for p, m in zip(prepared, messages, strict=True)]

        async def op(s: AsyncSession) -> list[AppendResult]:
            results = [await self.append_in(s, p, folder_id, flags=m.flags,
                                            internaldate=m.internaldate)
                       for p, m in zip(prepared, messages, strict=True)]
            if audit is not None:
                await audit.record_in(s, [r.uid for r in results])
            if then is not None:
                await then(s, results)
            return results

        return await self.db.write(op, locks=_locks(account_id))

    # -- reading ----------------------------------------------------------------------------

    async def list_messages(self, folder_id: int, min_uid: int = 1,
                            max_uid: int | None = None) -> list[MessageInfo]:
        """Metadata of the messages in a UID range, in UID order (no content is read)."""
        q = select(Message.id, Message.folder_id, Message.uid, Message.modseq, Message.flags,
                   Message.internaldate, Message.size, Message.conversation_id
                   ).where(Message.folder_id == folder_id, Message.uid >= min_uid)
        if max_uid is not None:
            q = q.where(Message.uid <= max_uid)
        async with self.db.reader() as s:
            rows = (await s.execute(q.order_by(Message.uid))).all()
        return [MessageInfo(r[0], r[1], r[2], r[3], frozenset(r[4].split()), utc(r[5]), r[6],
                            r[7]) for r in rows]

    async def read_raw(self, message_id: int) -> bytes:
        """The exact stored octets of a message."""
        async with self.db.reader() as s:
            row = (await s.execute(select(*_CONTENT_COLS).where(
                Message.id == message_id))).first()
        if row is None:
            raise NotFound("no such message")
        return await self._open(*row[1:])

    async def read_raws(self, message_ids: Sequence[int]) -> dict[int, bytes]:
        """:meth:`read_raw` of several messages with one query; those gone are left out."""
        stmt = _CONTENT_ANY if self.db.direct is not None else _CONTENT_IN
        async with self.db.read() as r:
            rows = (await r.execute(stmt, {"ids": list(message_ids)})).all()
        out: dict[int, bytes] = {}
        for row in rows:
            with contextlib.suppress(NotFound):  # its blob went with an expunge meanwhile
                out[row[0]] = await self._open(*row[1:])
        return out

    async def _open(self, account_id: int, storage_key: str, content: bytes | None,
                    content_key_enc: bytes | None) -> bytes:
        """Decrypt a message from its row's content columns (and its blob)."""
        if content_key_enc is not None:
            content_key = await self.keys.unseal(account_id, content_key_enc,
                                                 _aad("ck", account_id, storage_key))
            return unseal(content_key, await self.blobs.get(storage_key),
                          _shared_aad(storage_key))
        if content is None:
            content = await self.blobs.get(storage_key)
        return await self.keys.unseal(account_id, content, _aad("msg", account_id, storage_key))

    async def read_header_fields(self, message_id: int) -> tuple[str | None, str | None]:
        """(subject, from display) decrypted, for list views."""
        async with self.db.reader() as s:
            row = (await s.execute(select(
                Message.account_id, Message.blob_key, Message.subject_enc, Message.from_enc
            ).where(Message.id == message_id))).first()
        if row is None:
            raise NotFound("no such message")
        account_id, sk, subj, frm = row
        subject = (await self.keys.unseal(account_id, subj, _aad("subj", account_id, sk))
                   ).decode() if subj else None
        sender = (await self.keys.unseal(account_id, frm, _aad("from", account_id, sk))
                  ).decode() if frm else None
        return subject, sender

    async def locate(self, message_id: int) -> tuple[int, str, MessageInfo] | None:
        """(owning account, folder name, metadata) of a stored message; None if unknown."""
        q = select(Message.account_id, Folder.name, Message.id, Message.folder_id, Message.uid,
                   Message.modseq, Message.flags, Message.internaldate, Message.size,
                   Message.conversation_id).join(Folder, Folder.id == Message.folder_id
                                                 ).where(Message.id == message_id)
        async with self.db.reader() as s:
            r = (await s.execute(q)).first()
        if r is None:
            return None
        return r[0], r[1], MessageInfo(r[2], r[3], r[4], r[5], frozenset(r[6].split()),
                                       utc(r[7]), r[8], r[9])

    async def find_by_message_id(self, account_id: int, message_ids: Sequence[str]
                                 ) -> list[MessageInfo]:
        hashes = [message_id_hash(m) for m in message_ids if m.strip()]
        if not hashes:
            return []
        q = select(Message.id, Message.folder_id, Message.uid, Message.modseq, Message.flags,
                   Message.internaldate, Message.size, Message.conversation_id).where(
            Message.account_id == account_id, Message.message_id_hash.in_(hashes))
        async with self.db.reader() as s:
            rows = (await s.execute(q)).all()
        return [MessageInfo(r[0], r[1], r[2], r[3], frozenset(r[4].split()), utc(r[5]), r[6],
                            r[7]) for r in rows]

    # -- changing ---------------------------------------------------------------------------

    async def store_flags(self, folder_id: int, uids: Sequence[int], flags: Iterable[str],
                          mode: str, unchanged_since: int | None = None, *,
                          audit: AuditHook | None = None, origin: asyncio.Event | None = None,
                          account_id: int | None = None
                          ) -> tuple[list[MessageInfo], list[int]]:
        """Set (``mode='set'``), add or remove flags on messages by UID; ``audit``'s rows
        (given the changed UIDs) are written in the same transaction. ``origin``: the change
        event of the session making the change, not set by it (``MailboxEvents.changed_in``).

        Returns (changed messages with their new flags and modseq, UIDs not changed because
        their modseq is above ``unchanged_since``: RFC 7162 3.1.3).
        ``account_id``: the folder's owner, when the caller knows it (its write lock key).
        """
        if mode not in {"set", "add", "remove"}:
            raise ValueError("mode must be set, add or remove")
        uid_list = list(uids)
        flag_list = list(flags)

        async def op(s: AsyncSession) -> tuple[list[MessageInfo], list[int]]:
            return await store_flags_in(s, self.events, folder_id, uid_list, flag_list, mode,
                                        unchanged_since, audit, origin)

        # Flags only (never a message): committed without waiting for the WAL flush.
        return await self.db.write(op, locks=_locks(account_id), durable=False)

    async def expunge(self, folder_id: int, uids: Sequence[int] | None = None, *,
                      audit: AuditHook | None = None, origin: asyncio.Event | None = None,
                      account_id: int | None = None) -> list[int]:
        """Remove messages flagged \\Deleted (restricted to ``uids`` if given: UID EXPUNGE),
        with ``audit``'s rows (given the removed UIDs) in the same transaction (``origin``:
        as for :meth:`store_flags`)."""
        if not await has_deleted(self.db, folder_id):
            return []  # nothing to do: no write, no lock
        blob_keys: list[str] = []
        uid_list = list(uids) if uids is not None else None

        async def op(s: AsyncSession) -> list[int]:
            del blob_keys[:]  # an op retried after a lock conflict starts again
            return await expunge_in(s, self.events, folder_id, uid_list, audit, blob_keys,
                                    origin)

        gone = await self.db.write(op, locks=_locks(account_id))
        await self._gc_blobs(blob_keys)
        return gone

    async def copy(self, src_folder_id: int, uids: Sequence[int], dst_folder_id: int,
                   *, move: bool = False, audit: AuditHook | None = None,
                   account_id: int | None = None) -> list[tuple[int, int]]:
        """Copy (or move, RFC 6851) messages; returns (source UID, new UID) pairs in order.
        ``audit``'s rows (given the source UIDs) are written in the same transaction."""
        uid_list = sorted(set(uids))
        if not move:
            async def copy_op(s: AsyncSession) -> list[tuple[int, int]]:
                return await copy_in(s, self.events, src_folder_id, uid_list, dst_folder_id,
                                     audit)

            return await self.db.write(copy_op, locks=_locks(account_id))

        async def op(s: AsyncSession) -> list[tuple[int, int]]:
            src = (await s.execute(select(Folder).where(Folder.id == src_folder_id)
                                   .with_for_update()
                                 .execution_options(populate_existing=True))).scalars().first()
            dst = (await s.execute(select(Folder).where(Folder.id == dst_folder_id)
                                   .with_for_update()
                                 .execution_options(populate_existing=True))).scalars().first()
            if src is None or dst is None or src.account_id != dst.account_id:
                raise NotFound("no such folder")
            pairs: list[tuple[int, int]] = []
            moved_flags: list[str] = []
            for chunk in chunks(uid_list, 500):
                msgs = (await s.execute(select(Message).where(
                    Message.folder_id == src.id, Message.uid.in_(chunk)
                ).order_by(Message.uid))).scalars().all()
                for m in msgs:
                    new_uid = dst.uidnext
                    dst.uidnext += 1
                    dst.highestmodseq += 1
                    dst.message_count += 1
                    seen = SEEN in m.flags.split()
                    if not seen:
                        dst.unseen_count += 1
                    pairs.append((m.uid, new_uid))
                    moved_flags.append(m.flags)
                    if move:
                        m.folder_id = dst.id
                        m.uid = new_uid
                        m.modseq = dst.highestmodseq
                        src.message_count -= 1
                        if not seen:
                            src.unseen_count -= 1
                    else:
                        s.add(Message(
                            account_id=m.account_id, folder_id=dst.id, uid=new_uid,
                            modseq=dst.highestmodseq, flags=m.flags,
                            internaldate=m.internaldate, size=m.size,
                            content_enc=m.content_enc, blob_key=m.blob_key,
                            content_key_enc=m.content_key_enc,
                            subject_enc=m.subject_enc, from_enc=m.from_enc,
                            meta_enc=m.meta_enc, message_id_hash=m.message_id_hash,
                            conversation_id=m.conversation_id, sent_date=m.sent_date))
            if move and pairs:
                src.highestmodseq += 1
                await record_in(s, src.id, [old for old, _ in pairs], src.highestmodseq)
            if pairs:
                await s.flush()
                if src.name in CONVERSATION_FOLDERS or dst.name in CONVERSATION_FOLDERS:
                    convs: set[int] = set()
                    for part in chunks([new for _, new in pairs], 500):
                        convs.update(c for c in (await s.execute(
                            select(Message.conversation_id).distinct().where(
                                Message.folder_id == dst.id, Message.uid.in_(part),
                                Message.conversation_id.is_not(None)))).scalars() if c)
                    await Conversations.recount_in(s, convs)
                await _record_keywords(s, dst, [fl for m in moved_flags for fl in m.split()])
                account_id = dst.account_id
                self.events.changed_in(s, account_id)
            if audit is not None:
                await audit.record_in(s, [old for old, _ in pairs])
            return pairs

        return await self.db.write(op, locks=_locks(account_id))

    async def _gc_blobs(self, blob_keys: list[str]) -> None:
        """Delete blobs no message row references any more."""
        if not blob_keys:
            return
        async with self.db.session() as s:
            still = set((await s.execute(select(Message.blob_key).where(
                Message.blob_key.in_(blob_keys)))).scalars().all())
        for key in blob_keys:
            if key not in still:
                await self.blobs.delete(key)

    async def count_messages(self, account_id: int) -> int:
        async with self.db.session() as s:
            return int((await s.execute(select(func.count()).select_from(Message).where(
                Message.account_id == account_id))).scalar_one())


def _locks(account_id: int | None) -> tuple[int, ...] | None:
    """The write lock keys of a change to one of ``account_id``'s folders (None: unknown)."""
    return None if account_id is None else (account_lock(account_id),)


async def _record_keywords(s: AsyncSession, f: Folder, flags: Iterable[str]) -> None:
    """Record in ``folders.keywords`` the new keywords among ``flags`` (the folder row is
    locked by the caller). A folder still at NULL gets the full set derived from its
    messages, so the column is exact from the first new keyword on."""
    flags = list(flags)
    if f.keywords is None and keywords_of(flags):
        await s.flush()  # the moved messages are read to derive the whole set
    if (found := await new_keywords(s, f.id, f.keywords, flags)) is not None:
        f.keywords = found
