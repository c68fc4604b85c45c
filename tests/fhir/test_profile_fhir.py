"""The medical profile over /fhir, real HTTP: a consented professional adds a blood pressure
and an allergy that the patient sees in the webmail as added by them; search and read; the
access log and its French wording; refusals (no consent, blocked, profession, account state)
as OperationOutcomes; French validation messages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome

from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.fhir.conftest import FHIR_JSON, INS_TEST, Fhir, start
from tests.webmail.conftest import World, config, logged_in, services, world  # noqa: F401

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _subject(ins: str = INS[0]) -> dict[str, Any]:
    return {"identifier": {"system": INS_TEST, "value": ins}}


def blood_pressure(systolic: int = 128, diastolic: int = 82, day: str = "2026-11-20",
                   ins: str = INS[0]) -> dict[str, Any]:
    def part(code: str, value: int) -> dict[str, Any]:
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM,
                                  "code": "mm[Hg]"}}
    return {"resourceType": "Observation", "status": "final", "subject": _subject(ins),
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "effectiveDateTime": day,
            "component": [part("8480-6", systolic), part("8462-4", diastolic)]}


def allergy(ins: str = INS[0]) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "patient": _subject(ins),
            "code": {"text": "Pénicilline"},
            "reaction": [{"manifestation": [{"text": "urticaire"}], "severity": "moderate"}]}


@pytest.fixture
async def fhir(world: World) -> AsyncIterator[Fhir]:  # noqa: F811
    session, runner, f = await start(world.services)
    try:
        yield f
    finally:
        await session.close()
        await runner.cleanup()


async def post(f: Fhir, resource: dict[str, Any], headers: dict[str, str],
               rtype: str | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
    url = f"{f.base}/{rtype or resource['resourceType']}"
    async with f.session.post(url, data=json.dumps(resource).encode(),
                              headers={**headers, "Content-Type": FHIR_JSON}) as r:
        return r.status, await r.json(content_type=None), r


async def consent(s: Services, patient: AccountInfo, *members: AccountInfo) -> int:
    team = await s.documents.consents.create_team("Cabinet du Parc", [m.id for m in members])
    await s.documents.consents.grant(patient.id, "team", str(team))
    return team


def diagnostics(outcome: Any) -> list[str]:
    OperationOutcome.model_validate(outcome)
    return [i["diagnostics"] for i in outcome["issue"]]


async def test_consented_professional_adds_what_the_patient_sees(
        logged_in: World, fhir: Fhir) -> None:  # noqa: F811
    w = logged_in
    await consent(w.services, w.patient, w.pro)
    auth = await fhir.token(w.pro)
    status, bp, r = await post(fhir, blood_pressure(), auth)
    assert status == 201, bp
    Observation.model_validate(bp)
    assert r.headers["Location"] == f"{fhir.base}/Observation/{bp['id']}"
    assert bp["performer"] == [{"type": "Practitioner", "display": "Dr Claire Martin"}]
    status, body, _r = await post(fhir, allergy(), auth)
    assert status == 201, body

    data = await (await w.client.get("/api/profile")).json()
    [measure] = data["rubrics"]["mesures"]
    assert (measure["kind"], measure["systolic"], measure["diastolic"]) == ("tension", 128, 82)
    [added] = data["rubrics"]["allergies"]
    assert (added["substance"], added["reaction"], added["severity"]) == (
        "Pénicilline", "urticaire", "modérée")
    for entry in (measure, added):
        assert (entry["added_by"], entry["added_by_kind"]) == ("Dr Claire Martin",
                                                               "professional")
    for slug in ("mesures", "allergies"):
        page = await (await w.client.get(f"/profil/{slug}")).text()
        assert "Ajouté par Dr Claire Martin" in page

    status, found, _r = await fhir.get("/Observation", auth,
                                       **{"patient.identifier": f"{INS_TEST}|{INS[0]}"})
    assert status == 200
    Bundle.model_validate(found)
    assert found["total"] == 1 and found["entry"][0]["resource"]["id"] == bp["id"]
    assert found["entry"][0]["fullUrl"] == f"{fhir.base}/Observation/{bp['id']}"
    status, again, _r = await fhir.get(f"/Observation/{bp['id']}", auth)
    assert status == 200 and again["component"] == bp["component"]
    status, found, _r = await fhir.get("/AllergyIntolerance", auth,
                                       patient=f"Patient/{w.patient.id}")
    assert found["total"] == 1 and found["entry"][0]["resource"]["code"]["text"] == \
        "Pénicilline"
    _s, by_code, _r = await fhir.get("/Observation", auth, code=f"{LOINC}|29463-7",
                                     **{"subject.identifier": f"{INS_TEST}|{INS[0]}"})
    assert by_code["total"] == 0

    log = await (await w.client.get("/api/access-log")).json()
    entries = log["entries"] if isinstance(log, dict) else log
    actions = [(e["action"], e["action_fr"]) for e in entries if
               e["action"].startswith("profile-")]
    assert actions.count(("profile-add", "Ajout au profil médical")) == 2
    assert actions.count(("profile-read", "Consultation du profil médical")) == 4
    history = await (await w.client.get("/documents/historique")).text()
    for text in ("Ajout au profil médical", "Consultation du profil médical",
                 "Profil médical : Mesures", "Profil médical : Allergies", "Dr Claire Martin",
                 "complet et intact"):
        assert text in history, text


async def test_without_consent_the_same_post_is_refused(world: World, fhir: Fhir  # noqa: F811
                                                       ) -> None:
    w = world
    auth = await fhir.token(w.pro)
    status, body, _r = await post(fhir, blood_pressure(), auth)
    assert status == 403
    assert "consentement" in diagnostics(body)[0]
    status, body, _r = await fhir.get("/Observation", auth,
                                      **{"patient.identifier": f"{INS_TEST}|{INS[0]}"})
    assert status == 403 and diagnostics(body)
    team = await consent(w.services, w.patient, w.pro)
    assert (await post(fhir, allergy(), auth))[0] == 201
    # The patient withdraws the consent: blocked again, reads included.
    await w.services.documents.consents.revoke(w.patient.id, "team", str(team))
    assert (await post(fhir, allergy(), auth))[0] == 403
    status, _b, _r = await fhir.get("/AllergyIntolerance", auth,
                                    **{"patient.identifier": f"{INS_TEST}|{INS[0]}"})
    assert status == 403
    assert [e.data["substance"] for e in await w.services.profile.entries(
        w.patient.id, "allergies")] == ["Pénicilline"]


async def _pro(s: Services, local: str, profession: str, rpps: str, bal_type: str = "PER",
               name: str = "") -> AccountInfo:
    return await s.directory.add_professional(
        rpps=rpps, email=f"{local}@{DOMAIN}", name=name or local, profession=profession,
        password=PASSWORD, bal_type=bal_type)


async def test_who_may_use_the_profile(world: World, fhir: Fhir) -> None:  # noqa: F811
    w, s = world, world.services
    doctor = await _pro(s, "dr.traitant", "10", RPPS[1], name="Dr Paul Traitant")
    await s.documents.consents.set_treating_doctor(w.patient.id, doctor)
    status, body, _r = await post(fhir, allergy(), await fhir.token(doctor))
    assert status == 201, body  # the treating doctor needs no consent
    audio = await _pro(s, "audio", "26", RPPS[2])
    nurse = await _pro(s, "infirmier", "60", RPPS[3])
    app = await _pro(s, "appli.tension", "10", RPPS[4], bal_type="APP", name="Appli Tension")
    await consent(s, w.patient, audio, nurse, app)
    assert (await post(fhir, blood_pressure(), await fhir.token(audio)))[0] == 403
    assert (await post(fhir, blood_pressure(), await fhir.token(nurse)))[0] == 201
    assert (await post(fhir, blood_pressure(), await fhir.token(app)))[0] == 201
    kinds = {(e.added_by, e.added_by_kind) for e in await s.profile.entries(w.patient.id)}
    assert kinds == {("Dr Paul Traitant", "professional"), ("infirmier", "professional"),
                     ("Appli Tension", "application")}
    # A pending (or opposed, or closed) account is answered like an unknown INS.
    pending, _code = await s.directory.add_patient(ins=INS[1], name="Jeanne Attente",
                                                   status="pending")
    await s.documents.consents.grant(pending.id, "structure", "x")
    assert (await post(fhir, allergy(INS[1]), await fhir.token(doctor)))[0] == 403
    await s.documents.consents.set_treating_doctor(pending.id, doctor)
    assert (await post(fhir, allergy(INS[1]), await fhir.token(doctor)))[0] == 403


@pytest.mark.parametrize(("resource", "rtype", "message"), [
    (blood_pressure(80, 90), None, "Pression systolique (le premier chiffre) : la pression"),
    (blood_pressure(day="2099-01-01"), None, "Date de la mesure : la date ne peut pas être"),
    (blood_pressure() | {"code": {"coding": [{"system": LOINC, "code": "1234-5"}]}}, None,
     "Cette mesure n'est pas prise en charge"),
    (allergy() | {"reaction": "urticaire"}, None, "La ressource FHIR n'est pas valide"),
    (allergy() | {"code": {}}, None, "Substance : ce champ est obligatoire."),
    (allergy(), "Observation", "Le corps de la requête doit être une ressource Observation."),
    ({**allergy(), "patient": {"display": "Marie"}}, None,
     "La ressource doit désigner le patient par son INS"),
])
async def test_invalid_resource_is_a_french_outcome(
        world: World, fhir: Fhir, resource: dict[str, Any], rtype: str | None,  # noqa: F811
        message: str) -> None:
    await consent(world.services, world.patient, world.pro)
    status, body, _r = await post(fhir, resource, await fhir.token(world.pro), rtype)
    assert status == 400, body
    assert diagnostics(body)[0].startswith(message), body
    assert await world.services.profile.entries(world.patient.id) == []


async def test_consent_is_read_only_and_reads_need_auth(world: World,  # noqa: F811
                                                       fhir: Fhir) -> None:
    await consent(world.services, world.patient, world.pro)
    auth = await fhir.token(world.pro)
    status, body, _r = await post(fhir, {"resourceType": "Consent"}, auth)
    assert status == 405 and diagnostics(body)
    status, body, _r = await fhir.get("/Condition", {},
                                      **{"patient.identifier": f"{INS_TEST}|{INS[0]}"})
    assert status == 401
    status, body, _r = await fhir.get(f"/Condition/{world.patient.id}-99999", auth)
    assert status == 403 and diagnostics(body)
    await world.services.profile.add(world.patient, world.patient.id, "entourage-volontes",
                                     {"kind": "volontes", "text": "Pas d'acharnement."})
    status, found, _r = await fhir.get("/Consent", auth,
                                       **{"patient.identifier": f"{INS_TEST}|{INS[0]}"})
    assert status == 200 and found["total"] == 1
    status, found, _r = await fhir.get("/RelatedPerson", auth,
                                       **{"patient.identifier": f"{INS_TEST}|{INS[0]}"})
    assert status == 200 and found["total"] == 0


async def test_capability_statement_lists_the_profile(fhir: Fhir) -> None:
    status, data, _r = await fhir.get("/metadata", {})
    assert status == 200
    CapabilityStatement.model_validate(data)
    resources = {r["type"]: r for r in data["rest"][0]["resource"]}
    for rtype in ("Condition", "AllergyIntolerance", "MedicationStatement", "Immunization",
                  "Procedure", "FamilyMemberHistory", "Observation", "RelatedPerson"):
        codes = [i["code"] for i in resources[rtype]["interaction"]]
        assert codes == ["read", "search-type", "create"], rtype
        assert "patient.identifier" in [p["name"] for p in resources[rtype]["searchParam"]]
    assert [i["code"] for i in resources["Consent"]["interaction"]] == ["read", "search-type"]
