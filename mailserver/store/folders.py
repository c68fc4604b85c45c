"""Folder management of the mail store (IMAP mailboxes): list, create, delete, rename,
subscribe. Mixed into :class:`~mailserver.store.mailstore.MailStore`.

Subscriptions are kept by name (RFC 3501 6.3.6): an existing folder's in ``folders.subscribed``,
a name without a folder (its folder was deleted, or it never existed) in
``orphan_subscriptions``. Deleting a folder moves its subscription to the orphans; creating a
folder (or renaming one onto a name) takes it back, so a name is in at most one of the two.
CREATE does not subscribe; the default folders an account starts with are subscribed.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import AlreadyExists, NotFound, StoreError
from mailserver.store.db import Database
from mailserver.store.direct import direct
from mailserver.store.events import MailboxEvents
from mailserver.store.models import Folder, Message, OrphanSubscription
from mailserver.store.records import DEFAULT_FOLDERS, FolderInfo, new_uidvalidity
from mailserver.store.vanished import forget_folder_in, record_folder_in

__all__ = ["FolderOps"]

# Column reads (no ORM objects): FolderInfo.of reads the same attribute names off a row.
_FOLDER_COLS = tuple(Folder.__table__.c)
_LIST = direct(select(*_FOLDER_COLS).where(Folder.account_id == bindparam("a"))
                .order_by(Folder.name))
_BY_NAME = direct(select(*_FOLDER_COLS).where(Folder.account_id == bindparam("a"),
                                              Folder.name == bindparam("n")))
_STATUS = direct(select(*_FOLDER_COLS, select(func.count()).where(
    Message.folder_id == Folder.id,
    Message.uid > func.coalesce(Folder.recent_uid, 0)).scalar_subquery()).where(
    Folder.account_id == bindparam("a"), Folder.name == bindparam("n")))
_BY_SPECIAL_USE = direct(select(*_FOLDER_COLS).where(Folder.account_id == bindparam("a"),
                                                     Folder.special_use == bindparam("s")))

class FolderOps:
    """Folder operations; the host class provides ``db``, ``events`` and ``_gc_blobs``."""

    db: Database
    events: MailboxEvents

    async def _gc_blobs(self, blob_keys: list[str]) -> None:
        raise NotImplementedError

    async def create_default_folders(self, session: AsyncSession, account_id: int) -> None:
        for name, special in DEFAULT_FOLDERS:
            session.add(Folder(account_id=account_id, name=name, special_use=special,
                               uidvalidity=new_uidvalidity(), uidnext=1, highestmodseq=1,
                               subscribed=True, message_count=0, unseen_count=0,
                               keywords=""))

    async def list_folders(self, account_id: int) -> list[FolderInfo]:
        async with self.db.read() as conn:
            rows = (await conn.execute(_LIST, {"a": account_id})).all()
        return [FolderInfo.of(r) for r in rows]

    async def get_folder(self, account_id: int, name: str) -> FolderInfo:
        return (await self.folder_status(account_id, name, recent=False))[0]

    async def folder_status(self, account_id: int, name: str, *, recent: bool
                            ) -> tuple[FolderInfo, int]:
        """A folder by name and, if ``recent``, how many of its messages are above its
        \\Recent mark (STATUS RECENT), in one statement."""
        name = _canonical(name)
        async with self.db.read() as conn:
            row = (await conn.execute(_STATUS if recent else _BY_NAME,
                                      {"a": account_id, "n": name})).first()
        if row is None:
            raise NotFound(f"no folder {name!r}")
        return FolderInfo.of(row), int(row[-1]) if recent else 0

    async def folder_by_special_use(self, account_id: int, special: str) -> FolderInfo | None:
        async with self.db.read() as conn:
            row = (await conn.execute(_BY_SPECIAL_USE, {"a": account_id, "s": special})).first()
        return FolderInfo.of(row) if row else None

    @staticmethod
    async def _folder_by_name(s: AsyncSession, account_id: int, name: str,
                              lock: bool = False) -> Folder:
        name = _canonical(name)
        q = select(Folder).where(Folder.account_id == account_id, Folder.name == name)
        if lock:
            q = q.with_for_update().execution_options(populate_existing=True)
        f = (await s.execute(q)).scalars().first()
        if f is None:
            raise NotFound(f"no folder {name!r}")
        return f

    async def create_folder(self, account_id: int, name: str,
                            special_use: str | None = None) -> FolderInfo:
        """Create a folder; it is subscribed only if its name already was (RFC 3501 6.3.3
        does not subscribe a created mailbox)."""
        async def op(s: AsyncSession) -> FolderInfo:
            exists = (await s.execute(select(Folder.id).where(
                Folder.account_id == account_id, Folder.name == name))).first()
            if exists or name.upper() == "INBOX":
                raise AlreadyExists(f"folder {name!r} exists")
            f = Folder(account_id=account_id, name=name, special_use=special_use,
                       uidvalidity=new_uidvalidity(), uidnext=1, highestmodseq=1,
                       subscribed=await _take_orphan(s, account_id, name),
                       message_count=0, unseen_count=0, keywords="")
            s.add(f)
            await s.flush()
            return FolderInfo.of(f)

        return await self.db.write(op)

    async def delete_folder(self, account_id: int, name: str) -> None:
        blob_keys: list[str] = []

        async def op(s: AsyncSession) -> None:
            f = await self._folder_by_name(s, account_id, name, lock=True)
            if f.name == "INBOX":
                raise StoreError("INBOX cannot be deleted")
            keys = (await s.execute(select(Message.blob_key).where(
                Message.folder_id == f.id, Message.content_enc.is_(None)))).scalars().all()
            blob_keys.extend(k for k in keys if k)
            await s.execute(delete(Message).where(Message.folder_id == f.id))
            await forget_folder_in(s, f.id)
            if f.subscribed:  # RFC 3501 6.3.6: the subscription outlives the mailbox
                s.add(OrphanSubscription(account_id=account_id, name=f.name))
            await s.delete(f)
            self.events.changed_in(s, account_id)  # sessions with it selected must learn

        await self.db.write(op)
        await self._gc_blobs(blob_keys)

    async def rename_folder(self, account_id: int, old: str, new: str) -> None:
        async def op(s: AsyncSession) -> None:
            if (await s.execute(select(Folder.id).where(
                    Folder.account_id == account_id, Folder.name == new))).first():
                raise AlreadyExists(f"folder {new!r} exists")
            f = await self._folder_by_name(s, account_id, old, lock=True)
            if f.name == "INBOX":
                # RFC 3501 6.3.5: renaming INBOX moves its messages to a new folder.
                nf = Folder(account_id=account_id, name=new, special_use=None,
                            uidvalidity=new_uidvalidity(), uidnext=f.uidnext,
                            highestmodseq=f.highestmodseq,
                            subscribed=await _take_orphan(s, account_id, new),
                            message_count=f.message_count, unseen_count=f.unseen_count,
                            recent_uid=f.recent_uid, keywords=f.keywords)
                s.add(nf)
                await s.flush()
                f.highestmodseq += 1  # RFC 7162 3.2.5: INBOX's messages vanished from it
                await record_folder_in(s, f.id, f.highestmodseq)
                await s.execute(update(Message).where(Message.folder_id == f.id)
                                .values(folder_id=nf.id))
                f.message_count = 0
                f.unseen_count = 0
                self.events.changed_in(s, account_id)
                return
            prefix = old + "/"
            children = (await s.execute(select(Folder).where(
                Folder.account_id == account_id, Folder.name.startswith(prefix)
            ))).scalars().all()
            f.name = new
            for child in children:
                child.name = new + "/" + child.name[len(prefix):]
            # A subscription left on a new name by an earlier DELETE joins the folder's.
            for moved in (f, *children):
                moved.subscribed = await _take_orphan(s, account_id, moved.name) \
                    or moved.subscribed

        await self.db.write(op)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """SUBSCRIBE (an existing folder) or UNSUBSCRIBE (a folder, or a name left subscribed
        after its folder was deleted).

        Raises:
            NotFound: no such folder (and, to unsubscribe, no such subscription).
        """
        async def op(s: AsyncSession) -> None:
            try:
                f = await self._folder_by_name(s, account_id, name)
            except NotFound:
                if subscribed or not await _take_orphan(s, account_id, name):
                    raise
                return
            f.subscribed = subscribed

        await self.db.write(op)

    async def orphan_subscriptions(self, account_id: int) -> list[str]:
        """Names subscribed that have no folder (RFC 3501 6.3.6), sorted."""
        async with self.db.reader() as s:
            return list((await s.execute(
                select(OrphanSubscription.name).where(OrphanSubscription.account_id == account_id)
                .order_by(OrphanSubscription.name))).scalars())

    # -- appending --------------------------------------------------------------------------


def _canonical(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1); other names are kept as given."""
    return "INBOX" if name.upper() == "INBOX" else name


async def _take_orphan(s: AsyncSession, account_id: int, name: str) -> bool:
    """Remove ``name`` from the orphan subscriptions; True if it was there."""
    name = _canonical(name)
    gone = await s.execute(delete(OrphanSubscription).where(
        OrphanSubscription.account_id == account_id, OrphanSubscription.name == name
    ).returning(OrphanSubscription.id))
    return gone.first() is not None
