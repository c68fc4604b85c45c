"""The inbox index on conversations: kept up to date by delivery, flags, expunge, copy and
move in the same transaction; built at start-up for databases from before it."""

from __future__ import annotations

import email.utils

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.store.erase import erase_mail_in
from tests.conftest import DOMAIN, add_patient, add_pro
from tests.statements import recorded_statements


def _mail(pro: str, patient: str, subject: str, refs: str = "") -> tuple[bytes, str]:
    msgid = email.utils.make_msgid(domain=DOMAIN)
    head = (f"From: Dr Martin <{pro}>\r\nTo: {patient}\r\nSubject: {subject}\r\n"
            f"Message-ID: {msgid}\r\n")
    if refs:
        head += f"In-Reply-To: {refs}\r\nReferences: {refs}\r\n"
    return f"{head}\r\nBonjour.\r\n".encode(), msgid


async def _thread(s: Services, n: int, subject: str = "Bilan sanguin") -> int:
    pro = await s.directory.lookup(f"dr.martin@{DOMAIN}") or await add_pro(s)
    patient = await s.directory.by_ins("279035121518989") or await add_patient(s)
    party = await s.delivery.party_of(pro)
    raw, first = _mail(pro.address, patient.address, subject)
    report = await s.delivery.deliver(party, pro.address, [patient.address], raw)
    cid = report.conversation_ids[patient.address]
    for _ in range(n - 1):
        raw, _id = _mail(pro.address, patient.address, f"RE: {subject}", refs=first)
        await s.delivery.deliver(party, pro.address, [patient.address], raw)
    return cid


async def test_index_follows_delivery_flags_expunge_and_move(services: Services) -> None:
    s = services
    cid = await _thread(s, 3)
    entry = await s.conversations.index_entry(cid)
    assert entry is not None
    assert (entry.subject, entry.correspondent, entry.total, entry.unread) == (
        "Bilan sanguin", "Dr Martin", 3, 3)
    patient = await s.directory.by_ins("279035121518989")
    assert patient is not None
    inbox = await s.store.get_folder(patient.id, "INBOX")
    await s.store.store_flags(inbox.id, [1, 2], ["\\Seen"], "add")
    entry = await s.conversations.index_entry(cid)
    assert entry is not None and (entry.total, entry.unread) == (3, 1)
    await s.store.store_flags(inbox.id, [1], ["\\Seen"], "remove")
    await s.store.store_flags(inbox.id, [3], ["\\Deleted"], "add")
    await s.store.expunge(inbox.id)
    entry = await s.conversations.index_entry(cid)
    assert entry is not None and (entry.total, entry.unread) == (2, 1)
    archive = await s.store.create_folder(patient.id, "Archives")
    await s.store.copy(inbox.id, [1], archive.id, move=True)
    entry = await s.conversations.index_entry(cid)
    assert entry is not None and (entry.total, entry.unread) == (1, 0)
    [(_, back)] = await s.store.copy(archive.id, [1], inbox.id)
    entry = await s.conversations.index_entry(cid)
    assert entry is not None and (entry.total, entry.unread) == (2, 1)
    page = await s.conversations.index_page(patient.id, 0, 20)
    assert [e.id for e in page] == [cid]


async def test_index_is_built_for_an_old_database(config: Config) -> None:
    s = await open_services(config, fast_passwords=True)
    try:
        older = await _thread(s, 2, "Ordonnance")
        newer = await _thread(s, 3, "Compte rendu")
        # Conversations from before the index: no index columns' values. (The index itself
        # comes with the schema: a database from before migrations gets it from the baseline
        # upgrade, tests/ops/test_migrations.py.)
        async with s.db.engine.begin() as conn:
            await conn.execute(text(
                "UPDATE conversations SET message_count = NULL, unread_count = NULL, "
                "subject_enc = NULL, correspondent_enc = NULL"))
    finally:
        await s.close()
    s = await open_services(config, fast_passwords=True)
    try:
        async with s.db.engine.connect() as conn:
            names = await conn.run_sync(
                lambda c: {i["name"] for i in inspect(c).get_indexes("conversations")})
        assert "ix_conversations_patient_updated" in names
        patient = await s.directory.by_ins("279035121518989")
        assert patient is not None
        page = await s.conversations.index_page(patient.id, 0, 20)
        assert [(e.id, e.subject, e.correspondent, e.total, e.unread) for e in page] == [
            (newer, "Compte rendu", "Dr Martin", 3, 3),
            (older, "Ordonnance", "Dr Martin", 2, 2)]
        assert await s.conversations.unindexed() == []
    finally:
        await s.close()


async def test_page_count_is_kept_on_the_account_not_counted(services: Services) -> None:
    s = services
    await _thread(s, 2, "Ordonnance")
    await _thread(s, 1, "Compte rendu")
    patient = await s.directory.by_ins("279035121518989")
    assert patient is not None
    with recorded_statements(s.db) as seen:
        assert await s.conversations.count_for_patient(patient.id) == 2
    assert seen and not any("conversations" in q for q in seen)  # one read of the account
    assert await s.conversations.count_for_patient(10 ** 9) == 0

    async def erase(session: AsyncSession) -> list[str]:
        return await erase_mail_in(session, patient.id)

    await s.db.write(erase)
    assert await s.conversations.count_for_patient(patient.id) == 0
    assert await s.conversations.index_page(patient.id) == []
    await _thread(s, 1, "Nouveau suivi")  # a reactivated space counts again from zero
    assert await s.conversations.count_for_patient(patient.id) == 1
