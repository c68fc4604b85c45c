"""Closing the space from the webmail and the API, what a closed account sees at login, the
reactivation through a new code and the first connection (everything back), and a deletion
request (an empty space after reactivation)."""

from __future__ import annotations

from typing import Any

from tests.webmail.conftest import NIR, PATIENT_PASSWORD, VITALE, World


async def _api(w: World, path: str, body: dict[str, Any]) -> Any:
    csrf = (await (await w.client.get("/api/session")).json())["csrf"]
    return await w.client.post(path, json=body, headers={"X-CSRF-Token": csrf})


async def _reopen_by_code(w: World) -> None:
    """The 3422 line reissues a code; the patient does the first connection again (keeping
    their identifier: it is theirs)."""
    w.code = await w.services.directory.new_provisional_code(w.patient.id)
    r = await w.post("/premiere-connexion", {"code": w.code, "nir": NIR, "vitale": VITALE})
    assert r.status == 303 and r.headers["Location"] == "/premiere-connexion/identifiants"
    r = await w.post("/premiere-connexion/identifiants", {
        "identifier": "marie.dupont", "password": PATIENT_PASSWORD,
        "password2": PATIENT_PASSWORD, "email": "marie@perso.example", "phone": ""})
    assert r.status == 303, await r.text()
    await w.login("marie.dupont")


async def test_close_page_then_reactivation_by_code(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Vos résultats", "Bonjour Madame",
                       attachments=[("bilan.txt", "text/plain", b"glycemie 5.2")])
    (cid,) = await w.conversation_ids()
    await w.client.get(f"/api/conversations/{cid}")  # read once: marked as read
    before = await (await w.client.get(f"/api/conversations/{cid}")).json()

    page = await (await w.client.get("/parametres/fermer")).text()
    assert 'href="/parametres/export"' in page and "Télécharger mes données" in page
    assert "Supprimer aussi mes données archivées" in page
    r = await w.post("/parametres/fermer", {"password": "mauvais-mot-de-passe",
                                            "confirmer": "oui"})
    assert r.status == 403 and "Mot de passe incorrect" in await r.text()
    r = await w.post("/parametres/fermer", {"password": PATIENT_PASSWORD})
    assert r.status == 400 and "Cochez la case de confirmation" in await r.text()
    r = await w.post("/parametres/fermer", {"password": PATIENT_PASSWORD, "confirmer": "oui"})
    assert r.status == 200
    assert "Votre espace santé est fermé" in await r.text()

    # Closed everywhere at once: the session ended, the API refuses.
    r = await w.client.get("/conversations", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/connexion"
    assert (await w.client.get("/api/account")).status == 401
    # Only the right password tells the account is closed, and how to reopen it.
    r = await w.post("/connexion", {"identifier": "marie.dupont", "password": "faux-faux-faux"})
    wrong = await r.text()
    assert r.status == 401 and "Identifiant ou mot de passe incorrect" in wrong
    r = await w.post("/connexion", {"identifier": "inconnu.x", "password": "faux-faux-faux"})
    assert r.status == 401 and "Identifiant ou mot de passe incorrect" in await r.text()
    r = await w.post("/connexion", {"identifier": "marie.dupont", "password": PATIENT_PASSWORD})
    text = await r.text()
    assert r.status == 403 and "archivés pendant 10 ans" in text and "3422" in text

    await _reopen_by_code(w)
    after = await (await w.client.get(f"/api/conversations/{cid}")).json()
    assert after == before
    data = await (await w.client.get("/api/account")).json()
    assert data["state"] == "open" and data["deletion"] is None
    assert [(h["event"], h["actor"]) for h in data["history"]][-2:] == [
        ("close", "patient"), ("reactivate", "patient")]


async def test_api_close_with_deletion_request_then_empty_space(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Compte rendu", "Bonjour")
    r = await _api(w, "/api/account/delete-request", {"password": "faux-faux-faux"})
    assert r.status == 403 and "Mot de passe incorrect" in (await r.json())["error"]
    r = await _api(w, "/api/account/delete-request", {"password": PATIENT_PASSWORD})
    assert r.status == 200, await r.text()
    data = await (await w.client.get("/api/account")).json()
    assert data["deletion"]["effective_at"] is None and data["deletion"]["done"] is False
    acks = [m for m in w.outbox_messages() if "suppression" in str(m["Subject"])]
    assert len(acks) == 1 and acks[0]["To"] == "marie@perso.example"

    r = await _api(w, "/api/account/close", {"password": "faux-faux-faux"})
    assert r.status == 403
    r = await _api(w, "/api/account/close", {"password": PATIENT_PASSWORD})
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["state"] == "closed" and data["deletion"]["effective_at"]
    assert (await w.client.get("/api/account")).status == 401
    assert await w.services.closing.erase_due() == [w.patient.address]

    r = await w.post("/connexion", {"identifier": "marie.dupont", "password": PATIENT_PASSWORD})
    assert r.status == 403 and "supprimées à votre demande" in await r.text()
    await _reopen_by_code(w)
    assert await w.conversation_ids() == []
    assert (await (await w.client.get("/api/conversations")).json())["conversations"] == []
    data = await (await w.client.get("/api/account")).json()
    assert data["state"] == "open" and data["deletion"] is None
