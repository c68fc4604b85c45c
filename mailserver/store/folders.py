"""Folder management of the mail store (IMAP mailboxes): list, create, delete, rename,
subscribe. Mixed into :class:`~mailserver.store.mailstore.MailStore`."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import AlreadyExists, NotFound, StoreError
from mailserver.store.db import Database
from mailserver.store.models import Folder, Message
from mailserver.store.records import DEFAULT_FOLDERS, FolderInfo, new_uidvalidity

__all__ = ["FolderOps"]


class FolderOps:
    """Folder operations; the host class provides ``db`` and ``_gc_blobs``."""

    db: Database

    async def _gc_blobs(self, blob_keys: list[str]) -> None:
        raise NotImplementedError

    async def create_default_folders(self, session: AsyncSession, account_id: int) -> None:
        for name, special in DEFAULT_FOLDERS:
            session.add(Folder(account_id=account_id, name=name, special_use=special,
                               uidvalidity=new_uidvalidity(), uidnext=1, highestmodseq=1,
                               subscribed=True, message_count=0, unseen_count=0))

    async def list_folders(self, account_id: int) -> list[FolderInfo]:
        async with self.db.session() as s:
            rows = (await s.execute(
                select(Folder).where(Folder.account_id == account_id).order_by(Folder.name)
            )).scalars().all()
        return [FolderInfo.of(f) for f in rows]

    async def get_folder(self, account_id: int, name: str) -> FolderInfo:
        async with self.db.session() as s:
            f = await self._folder_by_name(s, account_id, name)
        return FolderInfo.of(f)

    async def folder_by_special_use(self, account_id: int, special: str) -> FolderInfo | None:
        async with self.db.session() as s:
            f = (await s.execute(select(Folder).where(
                Folder.account_id == account_id, Folder.special_use == special
            ))).scalars().first()
        return FolderInfo.of(f) if f else None

    @staticmethod
    async def _folder_by_name(s: AsyncSession, account_id: int, name: str,
                              lock: bool = False) -> Folder:
        if name.upper() == "INBOX":
            name = "INBOX"
        q = select(Folder).where(Folder.account_id == account_id, Folder.name == name)
        if lock:
            q = q.with_for_update().execution_options(populate_existing=True)
        f = (await s.execute(q)).scalars().first()
        if f is None:
            raise NotFound(f"no folder {name!r}")
        return f

    async def create_folder(self, account_id: int, name: str,
                            special_use: str | None = None) -> FolderInfo:
        async def op(s: AsyncSession) -> FolderInfo:
            exists = (await s.execute(select(Folder.id).where(
                Folder.account_id == account_id, Folder.name == name))).first()
            if exists or name.upper() == "INBOX":
                raise AlreadyExists(f"folder {name!r} exists")
            f = Folder(account_id=account_id, name=name, special_use=special_use,
                       uidvalidity=new_uidvalidity(), uidnext=1, highestmodseq=1,
                       subscribed=True, message_count=0, unseen_count=0)
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
            await s.delete(f)

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
                            highestmodseq=f.highestmodseq, subscribed=True,
                            message_count=f.message_count, unseen_count=f.unseen_count)
                s.add(nf)
                await s.flush()
                await s.execute(update(Message).where(Message.folder_id == f.id)
                                .values(folder_id=nf.id))
                f.message_count = 0
                f.unseen_count = 0
                return
            prefix = old + "/"
            children = (await s.execute(select(Folder).where(
                Folder.account_id == account_id, Folder.name.startswith(prefix)
            ))).scalars().all()
            f.name = new
            for child in children:
                child.name = new + "/" + child.name[len(prefix):]

        await self.db.write(op)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        async def op(s: AsyncSession) -> None:
            f = await self._folder_by_name(s, account_id, name)
            f.subscribed = subscribed

        await self.db.write(op)

    # -- appending --------------------------------------------------------------------------
