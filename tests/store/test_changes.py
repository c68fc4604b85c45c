"""STORE, EXPUNGE and COPY as set-based statements (mailserver/store/changes.py): the folder's
counts, modseqs, keywords and tombstones stay what the per-message rules give."""

from __future__ import annotations

from sqlalchemy import update

from mailserver.app import Services
from mailserver.store.models import Folder
from mailserver.store.vanished import vanished_since
from tests.conftest import add_pro


def _msg(n: int) -> bytes:
    return (f"From: a@b.test\r\nTo: c@d.test\r\nSubject: m{n}\r\n"
            f"Message-ID: <m{n}@b.test>\r\n\r\nBonjour {n}.\r\n").encode()


async def test_flags_modseqs_and_counts(services: Services) -> None:
    pro = await add_pro(services)
    store = services.store
    for n in range(6):
        await store.append(pro.id, "INBOX", _msg(n), flags=["\\Seen"] if n == 5 else [])
    f0 = await store.get_folder(pro.id, "INBOX")
    changed, failed = await store.store_flags(f0.id, [1, 2, 3, 6, 99], ["\\Seen", "$A"], "add")
    # 6 already had \Seen but gains $A: changed too; 99 does not exist.
    assert [m.uid for m in changed] == [1, 2, 3, 6] and failed == []
    assert [m.modseq for m in changed] == list(range(f0.highestmodseq + 1,
                                                     f0.highestmodseq + 5))
    assert changed[0].flags == frozenset({"\\Seen", "$A"})
    f1 = await store.get_folder(pro.id, "INBOX")
    assert (f1.highestmodseq, f1.unseen_count) == (f0.highestmodseq + 4, 2)
    assert f1.keywords == "$A"
    # Nothing to change: no modseq spent.
    assert await store.store_flags(f0.id, [1, 2], ["\\Seen"], "add") == ([], [])
    assert (await store.get_folder(pro.id, "INBOX")).highestmodseq == f1.highestmodseq
    # UNCHANGEDSINCE (RFC 7162 3.1.3): the messages changed since fail, the others change.
    changed, failed = await store.store_flags(f0.id, [1, 4, 5], ["\\Seen"], "remove",
                                              unchanged_since=f0.highestmodseq)
    assert (changed, failed) == ([], [1])  # 4 and 5 had no \Seen: nothing to change
    assert (await store.get_folder(pro.id, "INBOX")).unseen_count == 2
    changed, _ = await store.store_flags(f0.id, [1, 2], ["\\Flagged"], "set")
    assert [m.flags for m in changed] == [frozenset({"\\Flagged"})] * 2
    assert (await store.get_folder(pro.id, "INBOX")).unseen_count == 4


async def test_keywords_of_a_folder_not_recorded_yet_are_derived(services: Services) -> None:
    pro = await add_pro(services)
    store = services.store
    await store.append(pro.id, "INBOX", _msg(1), flags=["$Old"])
    await store.append(pro.id, "INBOX", _msg(2))
    folder = await store.get_folder(pro.id, "INBOX")
    async with services.db.session() as s:
        await s.execute(update(Folder).where(Folder.id == folder.id).values(keywords=None))
        await s.commit()
    await store.store_flags(folder.id, [2], ["$New"], "add")
    assert (await store.get_folder(pro.id, "INBOX")).keywords == "$New $Old"
    archive = await store.get_folder(pro.id, "Archive")
    async with services.db.session() as s:
        await s.execute(update(Folder).where(Folder.id == archive.id).values(keywords=None))
        await s.commit()
    await store.copy(folder.id, [1], archive.id)
    assert (await store.get_folder(pro.id, "Archive")).keywords == "$Old"


async def test_expunge_counts_tombstones_and_nothing_to_do(services: Services) -> None:
    pro = await add_pro(services)
    store = services.store
    for n in range(5):
        await store.append(pro.id, "INBOX", _msg(n), flags=["\\Seen"] if n < 2 else [])
    folder = await store.get_folder(pro.id, "INBOX")
    assert await store.expunge(folder.id) == []
    assert (await store.get_folder(pro.id, "INBOX")).highestmodseq == folder.highestmodseq
    # A keyword that merely contains the name is not \Deleted.
    await store.store_flags(folder.id, [1, 3, 4], ["\\Deleted"], "add")
    await store.store_flags(folder.id, [5], ["\\Deletedx"], "add")
    before = await store.get_folder(pro.id, "INBOX")
    assert await store.expunge(folder.id, [3, 4, 5]) == [3, 4]  # UID EXPUNGE
    assert await store.expunge(folder.id) == [1]
    after = await store.get_folder(pro.id, "INBOX")
    assert (after.message_count, after.unseen_count) == (2, 1)
    assert after.highestmodseq == before.highestmodseq + 2
    assert await vanished_since(services.db, folder.id, before.highestmodseq) == [1, 3, 4]


async def test_copy_numbers_uids_and_modseqs_in_order(services: Services) -> None:
    pro = await add_pro(services)
    store = services.store
    for n in range(4):
        await store.append(pro.id, "INBOX", _msg(n), flags=["\\Seen"] if n == 0 else ["$K"])
    inbox = await store.get_folder(pro.id, "INBOX")
    pairs = await store.copy(inbox.id, [4, 1, 3, 42], inbox.id)
    assert pairs == [(1, 5), (3, 6), (4, 7)]
    after = await store.get_folder(pro.id, "INBOX")
    assert (after.uidnext, after.message_count, after.unseen_count) == (8, 7, 5)
    assert after.highestmodseq == inbox.highestmodseq + 3
    copies = await store.list_messages(inbox.id, 5)
    assert [(m.uid, m.modseq) for m in copies] == [
        (5, inbox.highestmodseq + 1), (6, inbox.highestmodseq + 2), (7, inbox.highestmodseq + 3)]
    assert [sorted(m.flags) for m in copies] == [["\\Seen"], ["$K"], ["$K"]]
    assert [await store.read_raw(m.id) for m in copies] == [_msg(0), _msg(2), _msg(3)]
    trash = await store.get_folder(pro.id, "Trash")
    assert await store.copy(inbox.id, [2], trash.id) == [(2, 1)]
    assert (await store.get_folder(pro.id, "Trash")).keywords == "$K"
