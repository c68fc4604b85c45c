"""The encrypted store: sealing, UIDs, flags, rotation, shredding, restart, group commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.crypto import DecryptError, MasterKeyring
from mailserver.store.db import after_commit
from mailserver.store.models import Folder
from tests.conftest import add_pro
from tests.premigration import make_pre_migration


def _msg(subject: str, body: str = "Bonjour", size: int = 0) -> bytes:
    pad = ("x" * 76 + "\r\n") * (size // 78)
    return (f"From: a@b.fr\r\nTo: c@d.fr\r\nSubject: {subject}\r\nMessage-ID: <{subject}@t>\r\n"
            f"\r\n{body}\r\n{pad}").encode()


def _all_files_contain(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            hits.append(p)
    return hits


async def test_append_and_read_exact_bytes(services: Services) -> None:
    pro = await add_pro(services)
    raw = _msg("hello", "exact\r\n.dot\r\n\r\n")
    res = await services.store.append(pro.id, "INBOX", raw, flags=["\\Seen", "$Label1"],
                                      subject="hello", from_display="A <a@b.fr>",
                                      message_id="<hello@t>")
    assert res.uid == 1
    assert await services.store.read_raw(res.message_id) == raw
    assert await services.store.read_header_fields(res.message_id) == ("hello", "A <a@b.fr>")
    infos = await services.store.list_messages(res.folder_id)
    assert [i.uid for i in infos] == [1]
    assert infos[0].flags == frozenset({"\\Seen", "$Label1"})


async def test_large_message_goes_to_blob_and_is_sealed(services: Services, config: Config) -> None:
    pro = await add_pro(services)
    raw = _msg("BIGMARKER", "BIGMARKER body", size=config.store.inline_max + 10_000)
    res = await services.store.append(pro.id, "INBOX", raw)
    assert await services.store.read_raw(res.message_id) == raw
    blobs = list(config.path(config.store.blob_dir).rglob("*"))
    assert any(p.is_file() for p in blobs)
    assert _all_files_contain(config.data_dir, b"BIGMARKER") == []


async def test_uids_grow_and_flags_modseq(services: Services) -> None:
    pro = await add_pro(services)
    uids = [(await services.store.append(pro.id, "INBOX", _msg(f"m{i}"))).uid for i in range(5)]
    assert uids == [1, 2, 3, 4, 5]
    folder = await services.store.get_folder(pro.id, "INBOX")
    assert folder.message_count == 5 and folder.unseen_count == 5
    changed, failed = await services.store.store_flags(folder.id, [2, 3], ["\\Deleted", "\\Seen"],
                                                       "add")
    assert [c.uid for c in changed] == [2, 3] and failed == []
    assert changed[1].modseq > changed[0].modseq
    folder2 = await services.store.get_folder(pro.id, "INBOX")
    assert folder2.highestmodseq > folder.highestmodseq and folder2.unseen_count == 3
    # CONDSTORE: UNCHANGEDSINCE older than the message's modseq fails for it.
    _, failed = await services.store.store_flags(folder.id, [2], ["\\Flagged"], "add",
                                                 unchanged_since=1)
    assert failed == [2]
    assert await services.store.expunge(folder.id) == [2, 3]
    res = await services.store.append(pro.id, "INBOX", _msg("after"))
    assert res.uid == 6  # UIDs never reused
    folder3 = await services.store.get_folder(pro.id, "INBOX")
    assert folder3.message_count == 4


async def test_copy_move_and_shared_blob_lifetime(services: Services, config: Config) -> None:
    pro = await add_pro(services)
    raw = _msg("big", size=config.store.inline_max + 100)
    res = await services.store.append(pro.id, "INBOX", raw)
    archive = await services.store.get_folder(pro.id, "Archive")
    pairs = await services.store.copy(res.folder_id, [res.uid], archive.id)
    assert pairs == [(1, 1)]
    await services.store.store_flags(res.folder_id, [1], ["\\Deleted"], "add")
    await services.store.expunge(res.folder_id)
    copy = (await services.store.list_messages(archive.id))[0]
    assert await services.store.read_raw(copy.id) == raw  # blob kept for the copy
    trash = await services.store.get_folder(pro.id, "Trash")
    assert await services.store.copy(archive.id, [1], trash.id, move=True) == [(1, 1)]
    assert await services.store.list_messages(archive.id) == []


async def test_folders(services: Services) -> None:
    pro = await add_pro(services)
    names = {f.name: f.special_use for f in await services.store.list_folders(pro.id)}
    assert names == {"INBOX": None, "Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
                     "Archive": "\\Archive", "Junk": "\\Junk"}
    await services.store.create_folder(pro.id, "Projets")
    await services.store.create_folder(pro.id, "Projets/2026")
    await services.store.rename_folder(pro.id, "Projets", "Travail")
    names2 = {f.name for f in await services.store.list_folders(pro.id)}
    assert {"Travail", "Travail/2026"} <= names2 and "Projets" not in names2
    await services.store.delete_folder(pro.id, "Travail/2026")
    with pytest.raises(NotFound):
        await services.store.get_folder(pro.id, "Travail/2026")


async def test_master_key_rotation_rewraps_keys_only(services: Services, config: Config) -> None:
    pro = await add_pro(services)
    res = await services.store.append(pro.id, "INBOX", _msg("rot"))
    old_ring = MasterKeyring.load(config.path(config.store.master_key_file))
    n = await services.keys.rotate_master()
    assert n >= 1
    new_ring = MasterKeyring.load(config.path(config.store.master_key_file))
    assert set(new_ring.keys) != set(old_ring.keys) and len(new_ring.keys) == 1
    services.keys.cache.clear()
    assert await services.store.read_raw(res.message_id) == _msg("rot")


async def test_crypto_shredding(services: Services) -> None:
    pro = await add_pro(services)
    res = await services.store.append(pro.id, "INBOX", _msg("secret"))
    await services.keys.destroy(pro.id)
    with pytest.raises(KeyDestroyed):
        await services.store.read_raw(res.message_id)


async def test_tampered_ciphertext_is_detected(services: Services) -> None:
    from sqlalchemy import update

    from mailserver.store.models import Message

    pro = await add_pro(services)
    res = await services.store.append(pro.id, "INBOX", _msg("tamper"))
    async with services.db.session() as s:
        row = await s.get(Message, res.message_id)
        assert row is not None and row.content_enc is not None
        forged = row.content_enc[:-1] + bytes([row.content_enc[-1] ^ 1])
        await s.execute(update(Message).where(Message.id == res.message_id)
                        .values(content_enc=forged))
        await s.commit()
    with pytest.raises(DecryptError):
        await services.store.read_raw(res.message_id)


async def test_restart_keeps_messages_and_uids(config: Config) -> None:
    s1 = await open_services(config, fast_passwords=True)
    pro = await add_pro(s1)
    await s1.store.append(pro.id, "INBOX", _msg("one"))
    await s1.store.append(pro.id, "INBOX", _msg("two"))
    folder = await s1.store.get_folder(pro.id, "INBOX")
    await s1.close()
    s2 = await open_services(config, fast_passwords=True)
    try:
        folder2 = await s2.store.get_folder(pro.id, "INBOX")
        assert folder2.uidvalidity == folder.uidvalidity
        infos = await s2.store.list_messages(folder2.id)
        assert [await s2.store.read_raw(i.id) for i in infos] == [_msg("one"), _msg("two")]
        res = await s2.store.append(pro.id, "INBOX", _msg("three"))
        assert res.uid == 3
    finally:
        await s2.close()


async def test_group_commit_batches_concurrent_writes(services: Services) -> None:
    pro = await add_pro(services)
    before = services.db.batches
    results = await asyncio.gather(*[
        services.store.append(pro.id, "INBOX", _msg(f"g{i}")) for i in range(60)])
    assert sorted(r.uid for r in results) == list(range(1, 61))
    # 60 concurrent appends plus at most a few batches: far fewer commits than messages.
    assert services.db.batches - before < 30


async def test_failing_op_does_not_spoil_its_batch(services: Services) -> None:
    pro = await add_pro(services)

    async def bad(_s: object) -> None:
        raise NotFound("boom")

    good = [services.store.append(pro.id, "INBOX", _msg(f"ok{i}")) for i in range(5)]
    outcome = await asyncio.gather(*good[:2], services.db.write(bad), *good[2:],
                                   return_exceptions=True)
    assert isinstance(outcome[2], NotFound)
    assert sum(1 for o in outcome if not isinstance(o, Exception)) == 5


async def test_failing_first_op_of_a_batch_leaves_nothing_behind(services: Services) -> None:
    """The first op of a batch runs without a SAVEPOINT: when it fails after writing, its
    writes and its after-commit callbacks are dropped and the ops queued behind it commit."""
    pro = await add_pro(services)
    inbox = (Folder.account_id == pro.id) & (Folder.name == "INBOX")
    called: list[str] = []

    async def bad(s: AsyncSession) -> None:
        await s.execute(update(Folder).where(inbox).values(message_count=999))
        after_commit(s, lambda: called.append("bad"))
        raise NotFound("boom")

    async def good(s: AsyncSession) -> int:
        await s.execute(update(Folder).where(inbox).values(
            highestmodseq=Folder.highestmodseq + 1))
        after_commit(s, lambda: called.append("good"))
        return 1

    before = services.db.batches
    outcome = await asyncio.gather(services.db.write(bad), services.db.write(good),
                                   services.db.write(good), return_exceptions=True)
    assert services.db.batches == before + 1  # one batch: bad ran first, without a SAVEPOINT
    assert isinstance(outcome[0], NotFound)
    assert outcome[1:] == [1, 1]
    assert called == ["good", "good"]
    async with services.db.reader() as s:
        count, modseq = (await s.execute(select(Folder.message_count, Folder.highestmodseq)
                                         .where(inbox))).one()
    assert count == 0
    assert modseq >= 2


async def test_patient_name_sealed(services: Services, config: Config) -> None:
    info, code = await services.directory.add_patient(ins="279035121518989",
                                                      name="Zoé NAMEMARKER")
    assert await services.directory.patient_name(info.id) == "Zoé NAMEMARKER"
    assert _all_files_contain(config.data_dir, b"NAMEMARKER") == []
    assert await services.directory.check_provisional_code(info.id, code)
    assert await services.directory.check_provisional_code(info.id, code.lower().replace("-", ""))
    assert not await services.directory.check_provisional_code(info.id, "AAAA-BBBB-CCCC")


async def test_internaldate_keeps_its_instant(services: Services) -> None:
    from datetime import datetime, timedelta, timezone

    pro = await add_pro(services)
    paris = datetime(2026, 11, 27, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    res = await services.store.append(pro.id, "INBOX", _msg("dated"), internaldate=paris)
    (info,) = await services.store.list_messages(res.folder_id)
    assert info.internaldate == paris  # same instant, whatever the database keeps


async def test_large_message_for_several_accounts_is_written_once(services: Services,
                                                                   config: Config) -> None:
    a = await add_pro(services)
    b = await add_pro(services, "other", "10000000017")
    raw = _msg("SHAREDMARK", size=config.store.inline_max + 5000)
    shared = await services.store.share(raw)
    pa = await services.store.prepare(a.id, raw, shared=shared)
    pb = await services.store.prepare(b.id, raw, shared=shared)

    async def op(s: object) -> tuple[int, int]:
        ra = await services.store.append_in(s, pa, "INBOX")  # type: ignore[arg-type]
        rb = await services.store.append_in(s, pb, "Sent")  # type: ignore[arg-type]
        return ra.message_id, rb.message_id

    ida, idb = await services.db.write(op)
    blob_files = [p for p in config.path(config.store.blob_dir).rglob("*") if p.is_file()]
    assert len(blob_files) == 1
    assert await services.store.read_raw(ida) == raw == await services.store.read_raw(idb)
    assert _all_files_contain(config.data_dir, b"SHAREDMARK") == []
    # Shredding one account's key cuts that account off only.
    await services.keys.destroy(a.id)
    with pytest.raises(KeyDestroyed):
        await services.store.read_raw(ida)
    assert await services.store.read_raw(idb) == raw
    # The blob goes with its last row.
    sent = await services.store.get_folder(b.id, "Sent")
    await services.store.store_flags(sent.id, [1], ["\\Deleted"], "add")
    await services.store.expunge(sent.id)
    assert [p for p in blob_files if p.exists()] == blob_files  # a's row still holds it
    inbox = await services.store.get_folder(a.id, "INBOX")
    await services.store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await services.store.expunge(inbox.id)
    assert not any(p.exists() for p in blob_files)


async def test_new_nullable_columns_are_added_to_pre_migration_databases(
        services: Services) -> None:
    from sqlalchemy import inspect, text

    from mailserver.migrations import head, upgrade

    # A database from before migrations (no alembic_version) made by an older release.
    async with services.db.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE messages DROP COLUMN content_key_enc"))
        await make_pre_migration(conn)
    done = await upgrade(services.db.url)
    assert done.before == "pre-migrations" and done.after == head()
    async with services.db.engine.connect() as conn:
        names = await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("messages")})
    assert "content_key_enc" in names
