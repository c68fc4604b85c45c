"""Closing, archive, deletion on request, reactivation and purge on a real database (SQLite,
or PostgreSQL with MSSANTE_TEST_DATABASE_URL), driven by a controllable clock: everything comes
back byte for byte after a reactivation; a deletion gives an empty, working space; the purge
waits ten years."""

from __future__ import annotations

import email
import email.utils
import hashlib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from sqlalchemy import func, select

from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound, TransitionRefused
from mailserver.lifecycle import Actor, Event, State
from mailserver.store.archives import AccountArchive, DeletionRequest
from mailserver.store.models import MailboxKey, Message
from tests.conftest import DOMAIN, INS, add_pro

T0 = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)
AGENT = Actor.agent("A42")


async def patient(s: Services) -> AccountInfo:
    info, _code = await s.directory.add_patient(
        ins=INS[0], name="Marie Dupont", contact={"email": "marie@perso.example"})
    return info


async def fill(s: Services, pt: AccountInfo) -> None:
    """A space with a small and a large (blob) message, two documents, a profile entry and
    access-log entries."""
    pro = await add_pro(s)
    party = await s.delivery.party_of(pro)
    for size in (100, 300_000):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = pro.address, pt.address, f"Résultats {size}"
        msg["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
        msg["Date"] = email.utils.formatdate()
        msg.set_content("x" * size)
        report = await s.delivery.deliver(party, pro.address, [pt.address], bytes(msg),
                                          authenticated=pro)
        assert report.accepted == [pt.address]
    for size in (2_000, 400_000):
        await s.documents.upload(pt, pt.id, b"%PDF-1.4 " + bytes(size), filename=f"d{size}.pdf",
                                 mime_type="application/pdf", title=f"Doc {size}")
    await s.profile.add(pt, pt.id, "allergies", {"substance": "Latex"})
    docs = await s.documents.list(pt, pt.id)
    await s.documents.read(pt, pt.id, docs[0].id)


async def snapshot(s: Services, pt: AccountInfo) -> dict[str, Any]:
    """What the patient's space shows, bytes included."""
    messages = []
    for name in ("INBOX", "Sent"):
        folder = await s.store.get_folder(pt.id, name)
        for m in await s.store.list_messages(folder.id):
            raw = await s.store.read_raw(m.id)
            messages.append((name, m.uid, sorted(m.flags), hashlib.sha256(raw).hexdigest()))
    docs = []
    for d in await s.documents.list(pt, pt.id):
        _info, content = await s.documents.read(pt, pt.id, d.id)
        docs.append((d.id, d.label, hashlib.sha256(content).hexdigest()))
    log = [(e.seq, e.action, e.document_id) for e in await s.documents.log_entries(pt.id)]
    return {"messages": messages, "conversations": [
        (c.id, c.subject) for c in await s.conversations.index_all(pt.id)],
        "documents": docs, "log": log[:-len(docs)] if docs else log,
        "profile": [(e.id, e.rubric, dict(e.data)) for e in await s.profile.entries(pt.id)],
        "name": await s.directory.patient_name(pt.id),
        "contact": await s.directory.contact(pt.id)}


async def counts(s: Services, account_id: int) -> tuple[int, int, int]:
    async with s.db.session() as session:
        keys = (await session.execute(select(func.count()).select_from(MailboxKey).where(
            MailboxKey.account_id == account_id))).scalar_one()
        archives = (await session.execute(select(func.count()).select_from(AccountArchive)
                                          .where(AccountArchive.account_id == account_id)
                                          )).scalar_one()
        messages = (await session.execute(select(func.count()).select_from(Message).where(
            Message.account_id == account_id))).scalar_one()
    return int(keys), int(archives), int(messages)


async def test_close_then_reactivate_gives_everything_back(services: Services) -> None:
    s = services
    pt = await patient(s)
    await fill(s, pt)
    before = await snapshot(s, pt)
    assert len(before["messages"]) == 2 and len(before["documents"]) == 2
    blobs = sorted(p.name for p in s.store.blobs.root.rglob("*") if p.is_file())  # type: ignore[attr-defined]
    assert blobs

    assert await s.closing.close(pt.id, AGENT, "phone", now=T0) is State.CLOSED
    assert await counts(s, pt.id) == (0, 1, 2)  # the key moved, no data copied or deleted
    life = await s.directory.lifecycle(pt.id)
    assert life.state is State.CLOSED and life.history[-1].actor == "agent:A42"
    # No normal path reads the space: no key where the key manager looks.
    folder = await s.store.get_folder(pt.id, "INBOX")
    (first, *_rest) = await s.store.list_messages(folder.id)
    with pytest.raises(NotFound):
        await s.store.read_raw(first.id)
    with pytest.raises(NotFound):
        await s.profile.entries(pt.id)
    with pytest.raises(NotFound):
        await s.keys.get(pt.id)
    # Closing twice is refused; the generic transition refuses key events.
    with pytest.raises(TransitionRefused):
        await s.closing.close(pt.id, AGENT)
    with pytest.raises(TransitionRefused):
        await s.directory.transition(pt.id, Event.REACTIVATE, AGENT)

    assert await s.closing.reactivate(pt.id, AGENT, now=T0 + timedelta(days=30)) is State.OPEN
    assert await counts(s, pt.id) == (1, 0, 2)
    assert await snapshot(s, pt) == before
    assert sorted(p.name for p in s.store.blobs.root.rglob("*") if p.is_file()) == blobs  # type: ignore[attr-defined]
    assert [h.event for h in (await s.directory.lifecycle(pt.id)).history] == [
        "close", "reactivate"]


async def test_deletion_request_then_reactivation_gives_an_empty_space(
        services: Services) -> None:
    s = services
    pt = await patient(s)
    await fill(s, pt)
    outbox = s.config.path(s.config.webmail.outbox_dir)
    status = await s.closing.request_deletion(pt.id, Actor.patient(), now=T0)
    assert status.effective_at is None and not status.done
    acks = [email.message_from_bytes(p.read_bytes(), policy=default)
            for p in outbox.glob("*.eml")]
    assert len(acks) == 1 and acks[0]["To"] == "marie@perso.example"
    body = acks[0].get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "dès la fermeture de votre espace" in text and "Latex" not in text

    await s.closing.close(pt.id, Actor.patient(), "online", now=T0 + timedelta(hours=1))
    status = await s.closing.deletion_status(pt.id)
    assert status is not None and status.effective_at == T0 + timedelta(hours=1)
    async with s.db.session() as session:
        assert await session.get(DeletionRequest, pt.id) is None
    # Due at once (delay 0): the job's pass deletes it.
    assert await s.closing.erase_due(as_of=T0) == []
    assert await s.closing.erase_due(as_of=T0 + timedelta(hours=2)) == [pt.address]
    assert await counts(s, pt.id) == (0, 1, 0)
    assert not [p for p in s.store.blobs.root.rglob("*") if p.is_file()  # type: ignore[attr-defined]
                if p.name != ".keep"] or await _only_pro_blobs(s)
    life = await s.directory.lifecycle(pt.id)
    assert life.state is State.ARCHIVE_DELETED
    status = await s.closing.deletion_status(pt.id)
    assert status is not None and status.done

    await s.closing.reactivate(pt.id, AGENT)
    after = await snapshot(s, pt)
    assert after["messages"] == [] and after["documents"] == [] and after["profile"] == []
    assert after["log"] == [] and after["conversations"] == []
    assert after["name"] == "Marie Dupont"
    assert after["contact"] == {"email": "marie@perso.example"}
    # The space works: new mail arrives and reads.
    pro = await s.directory.lookup(f"dr.martin@{DOMAIN}")
    assert pro is not None
    report = await s.delivery.deliver(await s.delivery.party_of(pro), pro.address,
                                      [pt.address], b"Subject: encore\r\n\r\nbonjour\r\n",
                                      authenticated=pro)
    assert report.accepted == [pt.address]
    assert len((await snapshot(s, pt))["messages"]) == 1


async def _only_pro_blobs(s: Services) -> bool:
    """The blobs left belong to the professional's Sent copies."""
    async with s.db.session() as session:
        keys = set((await session.execute(select(Message.blob_key).where(
            Message.content_enc.is_(None)))).scalars().all())
    files = {p.name for p in s.store.blobs.root.rglob("*") if p.is_file()}  # type: ignore[attr-defined]
    return files <= keys


async def test_delete_after_closing_with_a_delay_and_purge_after_ten_years(
        services: Services) -> None:
    s = services
    pt = await patient(s)
    await fill(s, pt)
    s.closing.deletion_delay = timedelta(days=30)
    await s.closing.close(pt.id, AGENT, now=T0)
    status = await s.closing.request_deletion(pt.id, AGENT, now=T0 + timedelta(days=1))
    assert status.effective_at == T0 + timedelta(days=31)
    assert await s.closing.erase_due(as_of=T0 + timedelta(days=30)) == []
    assert (await s.directory.lifecycle(pt.id)).state is State.CLOSED
    assert await s.closing.erase_due(as_of=T0 + timedelta(days=31)) == [pt.address]

    ten = T0.replace(year=2035)
    assert await s.closing.purge_due(as_of=ten - timedelta(minutes=1)) == []
    assert (await s.directory.lifecycle(pt.id)).state is State.ARCHIVE_DELETED
    assert [a for _i, a in await s.closing.purge_candidates(as_of=ten)] == [pt.address]
    assert await s.closing.purge_due(as_of=ten) == [pt.address]
    life = await s.directory.lifecycle(pt.id)
    assert life.state is State.PURGED and life.history[-1].actor == "system:purge"
    assert await counts(s, pt.id) == (0, 0, 0)
    assert await s.directory.patient_name(pt.id) == ""
    with pytest.raises(TransitionRefused):
        await s.closing.reactivate(pt.id, AGENT)


async def test_purge_of_a_closed_archive_waits_ten_years(services: Services) -> None:
    s = services
    pt = await patient(s)
    await fill(s, pt)
    await s.closing.close(pt.id, AGENT, now=T0)
    assert await s.closing.purge_due(as_of=T0.replace(year=2034, month=12, day=31)) == []
    assert await s.closing.purge_due(as_of=T0.replace(year=2035)) == [pt.address]
    assert await counts(s, pt.id) == (0, 0, 0)
