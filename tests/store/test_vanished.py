"""Expunged-UID tombstones (QRESYNC, RFC 7162 3.2.5): written in the transaction that removes a
message from a folder, read by modseq, gone with their folder."""

from __future__ import annotations

from mailserver.app import Services
from mailserver.store.erase import erase_mail_in
from mailserver.store.vanished import vanished_since
from tests.conftest import add_pro


def _msg(n: int) -> bytes:
    return f"From: a@b.fr\r\nSubject: {n}\r\nMessage-ID: <v{n}@b.fr>\r\n\r\nx\r\n".encode()


async def test_expunge_move_rename_and_erase_leave_tombstones(services: Services) -> None:
    store, pro = services.store, await add_pro(services)
    for n in range(1, 7):
        await store.append(pro.id, "INBOX", _msg(n))
    inbox = await store.get_folder(pro.id, "INBOX")
    archive = await store.get_folder(pro.id, "Archive")
    start = inbox.highestmodseq
    await store.store_flags(inbox.id, [2, 3], ["\\Deleted"], "add")
    assert await store.expunge(inbox.id) == [2, 3]
    after_expunge = (await store.get_folder(pro.id, "INBOX")).highestmodseq
    await store.copy(inbox.id, [5], archive.id, move=True)
    db = store.db
    assert await vanished_since(db, inbox.id, start) == [2, 3, 5]
    assert await vanished_since(db, inbox.id, after_expunge) == [5]
    assert await vanished_since(db, inbox.id, start, [(1, 2), (5, 9)]) == [2, 5]
    # Renaming INBOX moves its messages away: INBOX's clients see them vanish.
    await store.rename_folder(pro.id, "INBOX", "Old")
    assert await vanished_since(db, inbox.id, start) == [1, 2, 3, 4, 5, 6]
    old = await store.get_folder(pro.id, "Old")
    assert await vanished_since(db, old.id, 0) == []
    # Erasing the account's mail tells every folder's clients.
    async with db.session() as s, s.begin():
        await erase_mail_in(s, pro.id)
    assert await vanished_since(db, old.id, old.highestmodseq) == [1, 4, 6]
    # A deleted folder's tombstones go with it.
    await store.delete_folder(pro.id, "Old")
    assert await vanished_since(db, old.id, 0) == []
