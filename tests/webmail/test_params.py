"""Path ids and page numbers are checked at the edge: out-of-range or malformed values answer
404/400 with the usual page or JSON, never a server error (issue 9, item 23)."""

from __future__ import annotations

import pytest

from tests.webmail.conftest import World

BAD_IDS = ["99999999999999999999", "9223372036854775808", "2147483648", "-1", "0", "+1",
           "1_0", "%D9%A3", "abc", "1e3", "%201"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_every_id_route_answers_404(logged_in: World, bad: str) -> None:
    w = logged_in
    await w.pro_writes("Examen", "Voir pièce jointe",
                       attachments=[("cr.pdf", "application/pdf", b"%PDF-1.4 x")])
    (cid,) = await w.conversation_ids()
    r = await w.client.get(f"/api/conversations/{cid}")
    mid = (await r.json())["messages"][0]["id"]
    html_gets = [f"/conversations/{bad}", f"/conversations/{bad}/messages/{mid}/pieces/1",
                 f"/conversations/{cid}/messages/{bad}/pieces/1",
                 f"/conversations/{cid}/messages/{mid}/pieces/{bad}"]
    for path in html_gets:
        r = await w.client.get(path)
        assert r.status == 404, path
        assert "Cette page n&#39;existe pas" in await r.text()
    api_gets = [p.replace("/conversations/", "/api/conversations/", 1)
                .replace("/pieces/", "/attachments/") for p in html_gets]
    for path in api_gets:
        r = await w.client.get(path)
        assert r.status == 404, path
        assert r.content_type == "application/json" and "error" in await r.json()
    r = await w.post(f"/conversations/{bad}/repondre", {"message": "Merci"},
                     csrf_from=f"/conversations/{cid}")
    assert r.status == 404
    token = (await (await w.client.get("/api/session")).json())["csrf"]
    r = await w.client.post(f"/api/conversations/{bad}/reply", json={"body": "Merci"},
                            headers={"X-CSRF-Token": token})
    assert r.status == 404 and "error" in await r.json()


@pytest.mark.parametrize("bad", ["-5", "0", "abc", "99999999999999999999", "1.5", ""])
async def test_malformed_page_is_400_and_never_echoed(logged_in: World, bad: str) -> None:
    w = logged_in
    r = await w.client.get(f"/conversations?page={bad}")
    assert r.status == 400
    text = await r.text()
    assert "mal formée" in text and f"Page {bad}" not in text
    r = await w.client.get(f"/api/conversations?page={bad}")
    assert r.status == 400 and "error" in await r.json()


async def test_page_beyond_the_last_shows_and_echoes_the_last(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Examen", "texte")
    r = await w.client.get("/api/conversations?page=7")
    data = await r.json()
    assert r.status == 200 and data["page"] == 1 and data["pages"] == 1
    r = await w.client.get("/conversations?page=7")
    assert r.status == 200 and "Examen" in await r.text()
