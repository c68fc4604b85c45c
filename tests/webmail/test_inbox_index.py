"""A page costs what the page shows: the inbox reads its index, a long conversation is paged
newest first, and a message is rendered once (its rendering kept, sealed)."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager

from sqlalchemy import select, update

from tests.statements import recorded_statements
from tests.webmail.conftest import World
from webmail.mailbox import MESSAGES_PER_PAGE, PER_PAGE
from webmail.models import RenderedMessage
from webmail.render import RENDER_VERSION


def _statements(w: World) -> AbstractContextManager[list[str]]:
    return recorded_statements(w.services.db)


async def _quiet(w: World) -> None:
    """Let the background work of the deliveries so far end (the IMAP summaries built after
    a delivery), so that its statements do not land inside a measured request."""
    if w.services.summaries is not None:
        await w.services.summaries.drain()


async def _inbox_statements(w: World, path: str = "/conversations") -> int:
    await _quiet(w)
    await w.client.get(path)  # warm caches (keys, session)
    with _statements(w) as seen:
        r = await w.client.get(path)
        assert r.status == 200
    # The key cache checks the shred generation at most every 50 ms, and the audit trail
    # writes the reads it batched within a second, whatever the mailbox size: constants that
    # may or may not fall inside this request (their statements and transactions are left
    # out).
    return len([s for s in seen if "key_generation" not in s and "audit_events" not in s
                and s not in ("BEGIN", "COMMIT")])


async def test_inbox_page_cost_does_not_grow_with_the_mailbox(logged_in: World) -> None:
    w = logged_in
    for i in range(3):
        first = await w.pro_writes(f"Sujet {i}", "texte")
        await w.pro_writes(f"RE: Sujet {i}", "suite", refs=str(first["Message-ID"]))
    small = await _inbox_statements(w)
    api_small = await _inbox_statements(w, "/api/conversations")
    for i in range(3, PER_PAGE + 8):
        first = await w.pro_writes(f"Sujet {i}", "texte")
        for _ in range(3):
            await w.pro_writes(f"RE: Sujet {i}", "suite", refs=str(first["Message-ID"]))
    assert await _inbox_statements(w) == small
    assert await _inbox_statements(w, "/api/conversations") == api_small
    html = await (await w.client.get("/conversations")).text()
    assert html.count('class="correspondant"') == PER_PAGE
    newest = f"Sujet {PER_PAGE + 7}"
    assert html.index(newest) < html.index(f"Sujet {PER_PAGE + 6}")
    assert "4 messages" in html and "4 non lus" in html and "Dr Claire Martin" in html
    data = await (await w.client.get("/api/conversations?page=2")).json()
    assert [c["messages"] for c in data["conversations"]][-3:] == [2, 2, 2]


async def test_long_conversation_is_paged_newest_first(logged_in: World) -> None:
    w = logged_in
    total = 2 * MESSAGES_PER_PAGE + 5
    first = await w.pro_writes("Suivi", "message numéro 0")
    for i in range(1, total):
        await w.pro_writes("RE: Suivi", f"message numéro {i}", refs=str(first["Message-ID"]))
    cid = (await w.conversation_ids())[0]
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    shown = [int(n) for n in re.findall(r"message numéro (\d+)", html)]
    assert shown == list(range(total - 1, total - 1 - MESSAGES_PER_PAGE, -1))
    assert '<a href="#reponse">Aller au formulaire de réponse</a>' in html
    assert 'id="reponse"' in html and 'name="message"' in html
    assert f'href="/conversations/{cid}?page=2" rel="next">Messages plus anciens' in html
    assert f"Messages 1 à {MESSAGES_PER_PAGE} sur {total}" in html
    # Only what was shown is marked read.
    listing = await (await w.client.get("/conversations")).text()
    assert f"{total - MESSAGES_PER_PAGE} non lus" in listing
    html = await (await w.client.get(f"/conversations/{cid}?page=3")).text()
    shown = [int(n) for n in re.findall(r"message numéro (\d+)", html)]
    assert shown == [4, 3, 2, 1, 0]
    assert 'rel="prev">Messages plus récents' in html and "plus anciens" not in html
    data = await (await w.client.get(f"/api/conversations/{cid}?page=2")).json()
    assert (data["page"], data["pages"], data["total"]) == (2, 3, total)
    assert len(data["messages"]) == MESSAGES_PER_PAGE and data["can_reply"]


async def _page_statements(w: World, path: str) -> tuple[int, str]:
    await _quiet(w)
    with _statements(w) as seen:
        r = await w.client.get(path)
        assert r.status == 200
    html = await r.text()
    # As for the inbox, the key cache's occasional check and the batched audit are left out.
    return len([s for s in seen if "key_generation" not in s and "audit_events" not in s
                and s not in ("BEGIN", "COMMIT")]), html


async def test_conversation_page_cost_does_not_grow_with_the_messages_shown(
        logged_in: World) -> None:
    w = logged_in
    short = await w.pro_writes("Court", "message court 0")
    await w.pro_writes("RE: Court", "message court 1", refs=str(short["Message-ID"]))
    long = await w.pro_writes("Long", "message long 0")
    for i in range(1, MESSAGES_PER_PAGE + 2):
        await w.pro_writes("RE: Long", f"message long {i}", refs=str(long["Message-ID"]))
    long_id, short_id = await w.conversation_ids()
    first_views = [await _page_statements(w, f"/conversations/{c}") for c in (short_id, long_id)]
    (small, small_html), (large, large_html) = [
        await _page_statements(w, f"/conversations/{c}") for c in (short_id, long_id)]
    # Two messages shown or ten: the same statements (each message is not read, decrypted
    # and rendered again); what was shown the first time is what is shown now, read since.
    assert small == large
    unread = ' <span class="badge">nouveau</span>'
    assert first_views[1][1].count(unread) == MESSAGES_PER_PAGE
    assert large_html.count(unread) == 0
    assert (small_html, large_html) == tuple(html.replace(unread, "")
                                             for _, html in first_views)
    assert large_html.count('class="corps texte"') == MESSAGES_PER_PAGE
    assert "message long 11" in large_html and "message court 0" in small_html


async def test_kept_renderings_are_sealed_go_with_their_message_and_follow_the_renderer(
        logged_in: World) -> None:
    w = logged_in
    first = await w.pro_writes("Bilan", "glycémie normale")
    await w.pro_writes("RE: Bilan", "cholestérol normal", refs=str(first["Message-ID"]))
    cid = (await w.conversation_ids())[0]
    shown = await (await w.client.get(f"/conversations/{cid}")).text()
    db = w.services.db
    async with db.session() as s:
        rows = (await s.execute(select(RenderedMessage))).scalars().all()
    assert len(rows) == 2 and {r.version for r in rows} == {RENDER_VERSION}
    assert all("glyc".encode() not in r.sealed and b"cholest" not in r.sealed for r in rows)
    # A rendering made by another renderer is not used: made again, and replaced.
    async with db.session() as s:
        await s.execute(update(RenderedMessage).values(version="render-0"))
        await s.commit()
    again = await (await w.client.get(f"/conversations/{cid}")).text()
    assert again == shown.replace(' <span class="badge">nouveau</span>', "")
    async with db.session() as s:
        assert set((await s.execute(select(RenderedMessage.version))).scalars()) == {
            RENDER_VERSION}
    # An expunged message takes its rendering with it.
    inbox = await w.services.store.get_folder(w.patient.id, "INBOX")
    await w.services.store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    assert await w.services.store.expunge(inbox.id) == [1]
    async with db.session() as s:
        assert len((await s.execute(select(RenderedMessage))).scalars().all()) == 1
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "cholestérol normal" in html and "glycémie" not in html
