"""First connection, login with a mailed one-time code, lockout, reset, sessions, CSRF."""

from __future__ import annotations

import re

from tests.webmail.conftest import CONTACT, LOGIN, NIR, PATIENT_PASSWORD, VITALE, World
from webmail.app import SESSION_COOKIE


async def test_security_headers_on_every_page(world: World) -> None:
    for path in ("/connexion", "/premiere-connexion", "/nexiste-pas", "/mot-de-passe-oublie"):
        r = await world.client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert '<html lang="fr">' in await r.text()


async def test_first_connection_then_login(world: World) -> None:
    await world.first_connection()
    info = await world.services.directory.by_login(LOGIN)
    assert info is not None and info.id == world.patient.id
    assert (await world.services.directory.contact(world.patient.id))["email"] == CONTACT
    # The letter's code works once.
    r = await world.post("/premiere-connexion", {"code": world.code, "nir": NIR,
                                                 "vitale": VITALE})
    assert r.status == 400
    assert "ne correspondent pas" in await r.text()
    await world.login()
    r = await world.client.get("/conversations")
    assert r.status == 200
    assert "Mes conversations" in await r.text()
    # The code went to the confirmed (edited) contact address, not the old one.
    assert world.outbox_messages()[-1]["To"] == CONTACT


async def test_first_connection_accepts_15_character_nir_and_spaces(world: World) -> None:
    spaced = " ".join([world.patient.ins[:1], world.patient.ins[1:3], world.patient.ins[3:]])
    r = await world.post("/premiere-connexion", {"code": world.code.lower(), "nir": spaced,
                                                 "vitale": "1234 5678 90"})
    assert r.status == 303


async def test_first_connection_refusals(world: World) -> None:
    cases = [
        ({"code": "AAAA-BBBB-CCCC", "nir": NIR, "vitale": VITALE}, "ne correspondent pas"),
        ({"code": world.code, "nir": "12345", "vitale": VITALE}, "13 caractères"),
        ({"code": world.code, "nir": NIR + "00", "vitale": VITALE}, "clé"),
        ({"code": world.code, "nir": NIR, "vitale": "abc"}, "carte Vitale"),
    ]
    for data, text in cases:
        r = await world.post("/premiere-connexion", data)
        assert r.status == 400
        assert text in await r.text()


async def test_first_connection_locks_after_repeated_wrong_codes(world: World) -> None:
    for _ in range(5):
        await world.post("/premiere-connexion", {"code": "AAAA-BBBB-CCCC", "nir": NIR,
                                                 "vitale": VITALE})
    r = await world.post("/premiere-connexion", {"code": world.code, "nir": NIR,
                                                 "vitale": VITALE})
    assert r.status == 429


async def test_suspended_account_is_explained(world: World) -> None:
    # (An opposed patient with a valid code may activate: see test_lifecycle.py; a closed
    # space is reopened by a new code: see test_closing.py.)
    await world.services.directory.set_status(world.patient.id, "suspended")
    r = await world.post("/premiere-connexion", {"code": world.code, "nir": NIR,
                                                 "vitale": VITALE})
    assert r.status == 403
    assert "suspendue" in await r.text()


async def test_password_rules(world: World) -> None:
    r = await world.post("/premiere-connexion", {"code": world.code, "nir": NIR,
                                                 "vitale": VITALE})
    assert r.status == 303
    for pw, text in (("court", "12 caractères"), ("motdepasse123", "trop courant"),
                     ("aaaaaaaaaaaaaaaaaa", "répéter"),
                     ("marie.dupont-Xy9!", "identifiant")):
        r = await world.post("/premiere-connexion/identifiants", {
            "identifier": LOGIN, "password": pw, "password2": pw, "email": CONTACT})
        assert r.status == 400
        assert text in await r.text(), pw
    r = await world.post("/premiere-connexion/identifiants", {
        "identifier": LOGIN, "password": PATIENT_PASSWORD, "password2": "autre",
        "email": "pas-une-adresse"})
    body = await r.text()
    assert "différents" in body and "adresse électronique" in body


async def test_wrong_password_and_lockout(world: World) -> None:
    await world.first_connection()
    for _ in range(5):
        r = await world.post("/connexion", {"identifier": LOGIN, "password": "mauvais"})
        assert r.status in (401, 429)
    r = await world.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
    assert r.status == 429
    assert "verrouillé" in await r.text() or "Trop de tentatives" in await r.text()
    assert not [m for m in world.outbox_messages() if "code" in str(m["Subject"]).lower()]


async def test_otp_wrong_code_then_spent(world: World) -> None:
    await world.first_connection()
    r = await world.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
    assert r.status == 303
    good = world.last_code()
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(4):
        r = await world.post("/connexion/code", {"code": wrong})
        assert r.status == 401
    r = await world.post("/connexion/code", {"code": wrong})
    assert r.status == 401 and "expiré" in await r.text()
    # The session is gone: even the right code no longer works.
    r = await world.client.post("/connexion/code", data={"code": good, "csrf": "x"},
                                allow_redirects=False)
    assert r.status in (303, 403)
    r = await world.client.get("/conversations", allow_redirects=False)
    assert r.status == 303


async def test_session_rotates_at_login_and_cookie_flags(world: World) -> None:
    await world.first_connection()
    r = await world.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
    before = r.cookies[SESSION_COOKIE].value
    cookie = r.headers.getall("Set-Cookie")
    flags = next(c for c in cookie if c.startswith(SESSION_COOKIE)).lower()
    assert "httponly" in flags and "samesite=strict" in flags
    r = await world.post("/connexion/code", {"code": world.last_code()})
    after = r.cookies[SESSION_COOKIE].value
    assert before != after
    # The pre-login token is not a logged-in session.
    world.client.session.cookie_jar.clear()
    world.client.session.cookie_jar.update_cookies({SESSION_COOKIE: before})
    r = await world.client.get("/conversations", allow_redirects=False)
    assert r.status == 303


async def test_secure_cookie_by_default(services, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from mailserver.runtime import webmail_deps
    from webmail.app import make_app

    cfg = dataclasses.replace(services.config, webmail=dataclasses.replace(
        services.config.webmail, secure_cookies=True))
    services.config = cfg
    client = await aiohttp_client(make_app(webmail_deps(services)))
    r = await client.get("/connexion")
    assert any("secure" in c.lower() for c in r.headers.getall("Set-Cookie"))
    # HSTS only over HTTPS (tests/webmail/test_headers.py); this client speaks plain HTTP.
    assert "Strict-Transport-Security" not in r.headers


async def test_idle_session_expires(world: World) -> None:
    await world.first_connection()
    await world.login()
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from webmail.models import WebSession

    async def op(s):  # type: ignore[no-untyped-def]
        await s.execute(update(WebSession).values(
            last_seen=datetime.now(UTC) - timedelta(hours=2)))

    await world.services.db.write(op)
    r = await world.client.get("/conversations", allow_redirects=False)
    assert r.status == 303


async def test_csrf_refused(world: World) -> None:
    await world.first_connection()
    await world.login()
    cid_list = await world.conversation_ids()
    assert cid_list == []
    r = await world.client.post("/deconnexion", data={"csrf": "faux"}, allow_redirects=False)
    assert r.status == 403
    r = await world.client.post("/deconnexion", data={}, allow_redirects=False)
    assert r.status == 403
    # Still logged in.
    assert (await world.client.get("/conversations", allow_redirects=False)).status == 200
    # Pre-login forms too (double-submit cookie).
    world.client.session.cookie_jar.clear()
    r = await world.client.post("/connexion", data={"identifier": LOGIN,
                                                    "password": PATIENT_PASSWORD,
                                                    "csrf": "invente"},
                                allow_redirects=False)
    assert r.status == 403


async def test_logout(logged_in: World) -> None:
    r = await logged_in.post("/deconnexion", {}, csrf_from="/conversations")
    assert r.status == 303
    r = await logged_in.client.get("/conversations", allow_redirects=False)
    assert r.status == 303


async def test_password_reset_by_email(world: World) -> None:
    await world.first_connection()
    r = await world.post("/mot-de-passe-oublie", {"identifier": NIR})
    assert r.status == 200 and "Si un compte correspond" in await r.text()
    mail = world.outbox_messages()[-1]
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert LOGIN in text
    link = re.search(r"http://webmail\.test(/reinitialiser/\S+)", text)
    assert link
    new = "Nouveau-Jardin-2026?"
    r = await world.post(link.group(1), {"password": new, "password2": new})
    assert r.status == 303
    # Single use.
    r = await world.client.get(link.group(1))
    assert r.status == 410
    await world.login(password=new)


async def test_reset_is_silent_for_unknown(world: World) -> None:
    r = await world.post("/mot-de-passe-oublie", {"identifier": "personne"})
    assert r.status == 200 and "Si un compte correspond" in await r.text()
    assert world.outbox_messages() == []


async def test_professional_cannot_use_webmail(world: World) -> None:
    r = await world.post("/connexion", {"identifier": world.pro.address, "password":
                                        "correct-horse-battery"})
    assert r.status == 403
    assert "réservée aux patients" in await r.text()
