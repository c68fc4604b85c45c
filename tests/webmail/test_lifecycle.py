"""The opposition window in the webmail and the API: a pending patient connects with the
letter's code, NIR and Vitale serial, then activates now or opposes (no identifier or
password created); an opposed patient activates later with a new code; GET /api/account."""

from __future__ import annotations

from datetime import date

from mailserver.directory.service import AccountInfo
from mailserver.lifecycle import Actor, Event, State
from tests.conftest import INS
from tests.webmail.conftest import CONTACT, PATIENT_PASSWORD, VITALE, World

NIR2 = INS[1][:13]


async def pending(world: World) -> tuple[AccountInfo, str]:
    return await world.services.directory.add_patient(
        ins=INS[1], name="Jean Martin", status="pending", notified_on=date.today())


async def test_pending_patient_opposes_online(world: World) -> None:
    patient, code = await pending(world)
    r = await world.post("/premiere-connexion", {"code": code, "nir": NIR2, "vitale": VITALE})
    assert r.status == 303 and r.headers["Location"] == "/premiere-connexion/choix"
    page = await (await world.client.get("/premiere-connexion/choix")).text()
    assert "Activer ma messagerie maintenant" in page and "Je m'oppose" in page
    assert "s'ouvrira automatiquement le" in page
    r = await world.post("/premiere-connexion/opposition", {})
    assert r.status == 200
    body = await r.text()
    assert "Votre opposition est enregistrée" in body
    assert "Aucun identifiant ni mot de passe" in body
    life = await world.services.directory.lifecycle(patient.id)
    assert life.state is State.OPPOSED
    assert [(h.event, h.actor, h.reason) for h in life.history] == [
        ("oppose", "patient", "online")]
    assert not await world.services.directory.is_activated(patient.id)
    # The letter's code no longer works; the session is gone.
    r = await world.post("/premiere-connexion", {"code": code, "nir": NIR2, "vitale": VITALE})
    assert r.status == 400
    r = await world.client.get("/premiere-connexion/choix", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/premiere-connexion"

    # Activation at any time: an agent reissues a code, the patient does the first connection.
    _state, new_code = await world.services.directory.transition(
        patient.id, Event.ACTIVATE, Actor.agent("A7"), reissue_code=True)
    assert new_code
    world.code = new_code
    r = await world.post("/premiere-connexion", {"code": new_code, "nir": NIR2,
                                                 "vitale": VITALE})
    assert r.status == 303 and r.headers["Location"] == "/premiere-connexion/identifiants"


async def test_pending_patient_activates_now(world: World) -> None:
    patient, code = await pending(world)
    r = await world.post("/premiere-connexion", {"code": code, "nir": NIR2, "vitale": VITALE})
    assert r.headers["Location"] == "/premiere-connexion/choix"
    r = await world.post("/premiere-connexion/identifiants", {
        "identifier": "jean.martin", "password": PATIENT_PASSWORD,
        "password2": PATIENT_PASSWORD, "email": CONTACT, "phone": ""})
    assert r.status == 303, await r.text()
    life = await world.services.directory.lifecycle(patient.id)
    assert life.state is State.OPEN
    assert [(h.event, h.actor) for h in life.history] == [("activate", "patient")]

    world.patient = patient
    await world.login("jean.martin")
    data = await (await world.client.get("/api/account")).json()
    assert data["state"] == "open"
    assert data["since"] == life.since.isoformat()
    assert [(h["event"], h["from"], h["to"], h["actor"]) for h in data["history"]] == [
        ("activate", "pending", "open", "patient")]


async def test_api_opposition(world: World) -> None:
    patient, code = await pending(world)
    body = {"code": code, "nir": NIR2, "vitale": VITALE}
    r = await world.client.post("/api/opposition", json=body)
    assert r.status == 200, await r.text()
    assert (await r.json()) == {"state": "opposed"}
    assert (await world.services.directory.get(patient.id)).status == "opposed"
    again = await world.client.post("/api/opposition", json=body)
    assert again.status == 400  # the code stopped working
    # An open account cannot be opposed (it can be closed).
    r = await world.client.post("/api/opposition", json={"code": world.code,
                                                         "nir": INS[0][:13], "vitale": VITALE})
    assert r.status == 409
    assert (await world.client.get("/api/account")).status == 401
