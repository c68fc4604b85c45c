"""The "Paramètres" page: password change (the old password stops working, other sessions
end), contact email changed only once the code mailed to the new address is typed, phone
changed at once, errors tied to their fields, CSRF, the links to the export and to closing."""

from __future__ import annotations

import re

from tests.webmail.conftest import CONTACT, LOGIN, PATIENT_PASSWORD, World

NEW_PASSWORD = "Glycine-Bleue-73?"  # noqa: S105 - test credential
NEW_EMAIL = "marie.nouvelle@perso.example"


def _code_sent_to(w: World, address: str) -> str:
    msgs = [m for m in w.outbox_messages() if str(m["To"]) == address]
    assert msgs, f"nothing mailed to {address}"
    body = msgs[-1].get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"\b(\d{6})\b", body.get_content())
    assert match
    return match.group(1)


async def test_page_sections_and_navigation(logged_in: World) -> None:
    html = await (await logged_in.client.get("/parametres")).text()
    assert '<a href="/parametres" aria-current="page">Paramètres</a>' in html
    for text in ("Mes coordonnées", "Mot de passe", "Télécharger mes données",
                 'href="/parametres/export"', 'href="/parametres/fermer"', CONTACT,
                 '<label for="password-current">', '<label for="contact-current">'):
        assert text in html, text
    html = await (await logged_in.client.get("/conversations")).text()
    assert 'href="/parametres"' in html


async def test_password_change(logged_in: World) -> None:
    w = logged_in
    r = await w.post("/parametres/mot-de-passe", {
        "current": "pas le bon", "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
        csrf_from="/parametres")
    assert r.status == 403
    html = await r.text()
    assert 'id="erreur-password-current"' in html and "actuel est incorrect" in html
    assert 'aria-describedby="erreur-password-current" aria-invalid="true"' in html
    r = await w.post("/parametres/mot-de-passe", {
        "current": PATIENT_PASSWORD, "password": NEW_PASSWORD, "password2": "autre"},
        csrf_from="/parametres")
    assert r.status == 400 and "sont différents" in await r.text()
    r = await w.post("/parametres/mot-de-passe", {
        "current": PATIENT_PASSWORD, "password": "court", "password2": "court"},
        csrf_from="/parametres")
    assert r.status == 400 and "au moins 12 caractères" in await r.text()

    r = await w.post("/parametres/mot-de-passe", {
        "current": PATIENT_PASSWORD, "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
        csrf_from="/parametres")
    assert r.status == 303 and r.headers["Location"] == "/parametres?info=mot-de-passe"
    page = await w.client.get("/parametres?info=mot-de-passe", allow_redirects=False)
    assert page.status == 200 and "mot de passe a été changé" in await page.text()
    assert any("mot de passe a été changé" in str(m["Subject"]) for m in w.outbox_messages())

    await w.client.post("/deconnexion", data={"csrf": await w.csrf("/parametres")})
    r = await w.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
    assert r.status == 401
    await w.login(password=NEW_PASSWORD)


async def test_email_change_needs_the_code(logged_in: World) -> None:
    w = logged_in
    directory = w.services.directory
    r = await w.post("/parametres/coordonnees", {
        "email": "pas-une-adresse", "phone": "06 12 34 56 78", "current": PATIENT_PASSWORD},
        csrf_from="/parametres")
    assert r.status == 400 and 'id="erreur-contact-email"' in await r.text()
    r = await w.post("/parametres/coordonnees", {
        "email": NEW_EMAIL, "phone": "06 12 34 56 78", "current": PATIENT_PASSWORD},
        csrf_from="/parametres")
    assert r.status == 303 and "code-envoye" in r.headers["Location"]
    assert (await directory.contact(w.patient.id))["email"] == CONTACT  # not yet
    html = await (await w.client.get("/parametres")).text()
    assert NEW_EMAIL in html and "Confirmer la nouvelle adresse" in html
    code = _code_sent_to(w, NEW_EMAIL)
    assert any(str(m["To"]) == CONTACT and "demandé" in str(m["Subject"])
               for m in w.outbox_messages())

    wrong = "000000" if code != "000000" else "111111"
    r = await w.post("/parametres/coordonnees/confirmer", {"code": wrong},
                     csrf_from="/parametres")
    assert r.status == 400 and 'id="erreur-confirm-code"' in await r.text()
    assert (await directory.contact(w.patient.id))["email"] == CONTACT
    r = await w.post("/parametres/coordonnees/confirmer", {"code": code},
                     csrf_from="/parametres")
    assert r.status == 303 and r.headers["Location"] == "/parametres?info=adresse"
    contact = await directory.contact(w.patient.id)
    assert contact["email"] == NEW_EMAIL and contact["phone"] == "0612345678"
    assert any(str(m["To"]) == CONTACT and "a été changée" in str(m["Subject"])
               for m in w.outbox_messages())
    # The next login code goes to the new address.
    await w.client.post("/deconnexion", data={"csrf": await w.csrf("/parametres")})
    r = await w.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
    assert r.status == 303
    assert str(w.outbox_messages()[-1]["To"]) == NEW_EMAIL


async def test_code_attempts_are_limited(logged_in: World) -> None:
    w = logged_in
    r = await w.post("/parametres/coordonnees", {
        "email": NEW_EMAIL, "phone": "", "current": PATIENT_PASSWORD}, csrf_from="/parametres")
    assert r.status == 303
    code = _code_sent_to(w, NEW_EMAIL)
    wrong = "000000" if code != "000000" else "111111"
    statuses = []
    for _ in range(5):
        r = await w.post("/parametres/coordonnees/confirmer", {"code": wrong},
                         csrf_from="/parametres")
        statuses.append(r.status)
    assert statuses[-1] == 410
    r = await w.post("/parametres/coordonnees/confirmer", {"code": code},
                     csrf_from="/parametres")
    assert r.status == 410
    assert (await w.services.directory.contact(w.patient.id))["email"] == CONTACT


async def test_phone_change_and_csrf(logged_in: World) -> None:
    w = logged_in
    r = await w.post("/parametres/coordonnees", {
        "email": CONTACT, "phone": "07 00 00 00 01", "current": "faux"},
        csrf_from="/parametres")
    assert r.status == 403 and 'id="erreur-contact-current"' in await r.text()
    r = await w.post("/parametres/coordonnees", {
        "email": CONTACT, "phone": "07 00 00 00 01", "current": PATIENT_PASSWORD},
        csrf_from="/parametres")
    assert r.status == 303 and r.headers["Location"] == "/parametres?info=telephone"
    assert (await w.services.directory.contact(w.patient.id))["phone"] == "0700000001"
    r = await w.client.post("/parametres/coordonnees", data={
        "email": NEW_EMAIL, "phone": "", "current": PATIENT_PASSWORD}, allow_redirects=False)
    assert r.status == 403
    assert (await w.services.directory.contact(w.patient.id))["email"] == CONTACT


async def test_settings_require_login(world: World) -> None:
    r = await world.client.get("/parametres", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/connexion"
