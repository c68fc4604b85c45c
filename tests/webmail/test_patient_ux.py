"""What a patient reads and does in the webmail (issue 9, item 26)."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.webmail.conftest import LOGIN, PATIENT_PASSWORD, World
from webmail.flows import _too_many, duration_fr
from webmail.sessions import LIMITS, Limit, RateLimiter
from webmail.web import LIMITER


async def test_lockout_text_says_the_configured_duration(world: World) -> None:
    await world.first_connection()
    limit = LIMITS["login-account"]
    for _ in range(limit.max_failures):
        await world.post("/connexion", {"identifier": LOGIN, "password": "mauvais"})
    r = await world.post("/connexion", {"identifier": LOGIN, "password": "mauvais"})
    text = await r.text()
    assert r.status == 429 and "Trop de tentatives" in text
    assert limit.lock == timedelta(minutes=15) and "15 minutes au plus" in text
    assert "une heure" not in text


async def test_password_login_while_the_code_step_is_locked(world: World) -> None:
    await world.first_connection()
    limiter = world.client.app[LIMITER]
    for _ in range(LIMITS["otp-account"].max_failures):
        await limiter.fail("otp-account", str(world.patient.id))
    r = await world.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
    text = await r.text()
    assert r.status == 429 and "Trop de tentatives" in text and "30 minutes au plus" in text


def test_lockout_text_follows_the_limits() -> None:
    assert duration_fr(timedelta(minutes=15)) == "15 minutes"
    assert duration_fr(timedelta(hours=1)) == "une heure"
    assert duration_fr(timedelta(hours=2)) == "2 heures"
    assert duration_fr(timedelta(seconds=30)) == "une minute"
    limiter = RateLimiter(None, {  # type: ignore[arg-type]  # no database needed for the text
        "a": Limit(3, timedelta(hours=1), timedelta(minutes=5)),
        "b": Limit(3, timedelta(hours=1), timedelta(minutes=30))})
    assert "(30 minutes au plus)" in _too_many(limiter, "a", "b")
    assert "(5 minutes au plus)" in _too_many(limiter, "a")


async def test_own_secure_address_is_shown_once_logged_in(logged_in: World) -> None:
    w = logged_in
    for path in ("/conversations", "/nexiste-pas"):
        html = await (await w.client.get(path)).text()
        assert "Mon adresse sécurisée" in html and w.patient.address in html
    r = await w.client.post("/deconnexion", data={"csrf": await w.csrf("/conversations")},
                            allow_redirects=False)
    assert r.status == 303
    html = await (await w.client.get("/connexion")).text()
    assert w.patient.address not in html


async def test_confirmation_after_reply_gets_the_focus_without_js(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Bilan", "Merci de confirmer.")
    (cid,) = await w.conversation_ids()
    r = await w.post(f"/conversations/{cid}/repondre", {"message": "Bien reçu."},
                     csrf_from=f"/conversations/{cid}")
    assert r.status == 303
    location = r.headers["Location"]
    assert location.endswith("#confirmation")
    html = await (await w.client.get(location.partition("#")[0])).text()
    assert re.search(r'<div id="confirmation" [^>]*role="status" tabindex="-1" autofocus>',
                     html), html


async def test_wide_html_content_scrolls_inside_the_message() -> None:
    """<pre> and tables of an HTML mail get horizontal scrolling inside the message body
    (checked in a real browser by tests/e2e/test_webmail_browser.py)."""
    from pathlib import Path

    import webmail

    css = (Path(webmail.__file__).parent / "static" / "style.css").read_text()
    rules = dict(re.findall(r"^([^{}/\n]+?)\s*\{([^}]*)\}", css, re.MULTILINE))
    assert "overflow-x: auto" in rules[".corps.html"]
    # One scroll container, focusable so the keyboard can scroll it (axe
    # scrollable-region-focusable); no unfocusable scroller nested inside.
    assert not any(re.search(r"overflow(-x)?\s*:", body) for sel, body in rules.items()
                   if sel.startswith(".corps ") and sel != ".corps.html")
    template = (Path(webmail.__file__).parent / "templates" / "conversation.html").read_text()
    assert '<div class="corps html" tabindex="0">' in template


async def _expire_sessions(w: World) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from webmail.models import WebSession

    async def op(s):  # type: ignore[no-untyped-def]
        await s.execute(update(WebSession).values(
            last_seen=datetime.now(UTC) - timedelta(hours=2)))

    await w.services.db.write(op)


async def test_reply_typed_while_the_session_expired_is_given_back(logged_in: World) -> None:
    import aiohttp

    w = logged_in
    await w.pro_writes("Bilan", "Merci de confirmer.")
    (cid,) = await w.conversation_ids()
    token = await w.csrf(f"/conversations/{cid}")
    await _expire_sessions(w)
    text = "Bonjour docteur, <je confirme> le rendez-vous du 12."
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("message", text)
    form.add_field("fichiers", b"%PDF-1.4", filename="scan.pdf", content_type="application/pdf")
    r = await w.client.post(f"/conversations/{cid}/repondre", data=form, allow_redirects=False)
    html = await r.text()
    assert r.status == 403 and "Erreur 403" not in html
    assert "Votre session a expiré" in html and "n'a pas été envoyée" in html
    assert "Bonjour docteur, &lt;je confirme&gt; le rendez-vous du 12." in html
    assert f'data-brouillon-pour="/conversations/{cid}"' in html
    assert "devront être choisis à nouveau" in html and 'href="/connexion?info=expire"' in html
    folder = await w.services.store.get_folder(w.pro.id, "INBOX")
    assert await w.services.store.list_messages(folder.id) == []
    # Log in again: the reply can then be sent as usual.
    await w.login()
    r = await w.post(f"/conversations/{cid}/repondre", {"message": text},
                     csrf_from=f"/conversations/{cid}")
    assert r.status == 303
    assert len(await w.services.store.list_messages(folder.id)) == 1


async def test_other_refused_forms_still_get_403(logged_in: World) -> None:
    """Only a reply without a live login gets the "session expired" page: a live session with
    a wrong token is still refused (CSRF), and nothing is sent."""
    w = logged_in
    await w.pro_writes("Bilan", "Merci de confirmer.")
    (cid,) = await w.conversation_ids()
    r = await w.client.post(f"/conversations/{cid}/repondre",
                            data={"csrf": "faux", "message": "x"}, allow_redirects=False)
    assert r.status == 403 and "Erreur 403" in await r.text()
    r = await w.client.post(f"/api/conversations/{cid}/reply", json={"body": "x"},
                            headers={"Authorization": "Bearer expire"})
    assert r.status == 401


async def test_notices_are_grouped_while_unread(logged_in: World) -> None:
    w = logged_in

    def notices() -> int:
        return sum(1 for m in w.outbox_messages() if "nouveau message" in str(m["Subject"]))

    for i in range(3):
        await w.pro_writes(f"Message {i}", "texte")
    assert await w.services.runner.run_due() >= 3
    assert notices() == 1  # three messages, one notice
    await w.pro_writes("Message 3", "texte")
    await w.services.runner.run_due()
    assert notices() == 1  # still unread, within the hour
    # The patient reads everything: the next message is announced at once.
    for cid in await w.conversation_ids():
        assert (await w.client.get(f"/conversations/{cid}")).status == 200
    await w.pro_writes("Message 4", "texte")
    await w.services.runner.run_due()
    assert notices() == 2
    # Unread again, but an hour has passed since that notice: one more.
    await w.pro_writes("Message 5", "texte")
    await w.services.runner.run_due()
    assert notices() == 2

    last = await w.services.sent.last_notice(w.patient.id)
    assert last is not None
    await w.services.sent.set_notice_time(w.patient.id, last.sent_at - timedelta(minutes=61))
    await w.pro_writes("Message 6", "texte")
    await w.services.runner.run_due()
    assert notices() == 3


async def test_search_finds_a_word_in_message_bodies(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Résultats", "Votre taux de CHOLESTÉROL est normal.")
    await w.pro_writes("Rendez-vous", "Texte", html="<p>Apportez votre <b>carte&nbsp;Vitale</b> "
                       "et l'ordonnance.</p><script>ordonnance-cachee</script>")
    await w.pro_writes("Autre", "Rien à voir")
    html = await (await w.client.get("/conversations?q=cholesterol")).text()
    assert "Résultats" in html and html.count('class="correspondant"') == 1
    html = await (await w.client.get("/conversations?q=carte%20vitale")).text()
    assert "Rendez-vous" in html and html.count('class="correspondant"') == 1
    html = await (await w.client.get("/conversations?q=ordonnance-cachee")).text()
    assert html.count('class="correspondant"') == 0
    r = await w.client.get("/api/conversations?q=Cholest%C3%A9rol")
    assert [c["title"] for c in (await r.json())["conversations"]] == ["Résultats"]
    # The patient's own replies are searched too.
    (cid,) = [c for c in await w.conversation_ids()][-1:]
    r = await w.post(f"/conversations/{cid}/repondre", {"message": "Je viendrai jeudi matin."},
                     csrf_from=f"/conversations/{cid}")
    assert r.status == 303
    html = await (await w.client.get("/conversations?q=jeudi")).text()
    assert html.count('class="correspondant"') == 1
