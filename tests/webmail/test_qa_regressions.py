"""Regressions found by using the webmail as a patient in a real browser (QA pass)."""

from __future__ import annotations

import email.utils

from tests.conftest import DOMAIN
from tests.webmail.conftest import NIR, VITALE, World


async def _deliver_raw(w: World, raw: bytes) -> None:
    party = await w.services.delivery.party_of(w.pro)
    report = await w.services.delivery.deliver(party, w.pro.address, [w.patient.address], raw,
                                               authenticated=w.pro)
    assert report.accepted == [w.patient.address]


async def test_list_title_of_a_raw_utf8_subject_is_not_mojibake(logged_in: World) -> None:
    # swaks, mutt and many scripts put UTF-8 straight in the Subject (RFC 6532).
    w = logged_in
    raw = (f"From: Dr Martin <{w.pro.address}>\r\nTo: {w.patient.address}\r\n"
           "Subject: Rendez-vous de contrôle\r\n"
           f"Message-ID: {email.utils.make_msgid(domain=DOMAIN)}\r\n"
           f"Date: {email.utils.formatdate()}\r\n\r\nBonjour.\r\n").encode()
    await _deliver_raw(w, raw)
    html = await (await w.client.get("/conversations")).text()
    assert "Rendez-vous de contrôle" in html
    assert "\ufffd" not in html
    data = await (await w.client.get("/api/conversations")).json()
    assert data["conversations"][0]["title"] == "Rendez-vous de contrôle"


async def test_bare_fin_subject_is_shown_in_words(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("[FIN]", "Je clos nos échanges.")
    html = await (await w.client.get("/conversations")).text()
    assert "Fin des échanges" in html and ">[FIN]<" not in html
    cid = (await w.conversation_ids())[0]
    page = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "<h1>Fin des échanges</h1>" in page


async def test_plain_text_body_has_no_trailing_blank_lines(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Suivi", "Bonjour Madame.\n\n\n\n")
    cid = (await w.conversation_ids())[0]
    page = await (await w.client.get(f"/conversations/{cid}")).text()
    assert '<div class="corps texte">Bonjour Madame.</div>' in page


async def test_pages_declare_an_icon_so_browsers_do_not_request_favicon(world: World) -> None:
    html = await (await world.client.get("/connexion")).text()
    assert '<link rel="icon" href="data:,">' in html


async def test_password_rules_say_three_of_four_types(world: World) -> None:
    r = await world.post("/premiere-connexion", {"code": world.code, "nir": NIR,
                                                 "vitale": VITALE})
    assert r.status == 303
    html = await (await world.client.get("/premiere-connexion/identifiants")).text()
    # The rule is "3 of the 4 character types" (webmail/passwords.py): say it plainly.
    assert "au moins 3 types parmi minuscules, majuscules, chiffres et symboles" in html
