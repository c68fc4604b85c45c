"""The medical profile in /api/profile and in the webmail's "Profil médical" pages: adding,
listing, changing and deleting entries, French refusals (never a stack trace), who added an
entry, and another patient's entries answered as unknown."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from attachments.labels import Label
from dossier_bridge.store import NewDocument
from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from mailserver.profile import RUBRIC_SLUGS, RUBRICS
from tests.conftest import INS
from tests.webmail.conftest import World


async def _api(w: World) -> dict[str, str]:
    r = await w.client.get("/api/session")
    return {"X-CSRF-Token": (await r.json())["csrf"]}


async def _other_patient(s: Services) -> AccountInfo:
    info, _ = await s.directory.add_patient(ins=INS[1], name="Jeanne Autre")
    return info


async def test_api_add_list_change_delete(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    r = await w.client.post("/api/profile/allergies", headers=h, json={
        "substance": "Pénicilline", "reaction": "urticaire", "severity": "modérée"})
    assert r.status == 201, await r.text()
    allergy = await r.json()
    assert isinstance(allergy["id"], int) and allergy["added_by_kind"] == "patient"
    for body in ({"kind": "poids", "value": 72.5, "unit": "kg", "date": "2024-11-20"},
                 {"kind": "taille", "value": 170, "unit": "cm", "date": "2024-11-20"},
                 {"kind": "tension", "systolic": 128, "diastolic": 82, "unit": "mmHg",
                  "date": "2024-11-21"},
                 {"kind": "glycemie", "value": 5.55, "unit": "mmol/L", "date": "2024-11-21"}):
        r = await w.client.post("/api/profile/mesures", headers=h, json=body)
        assert r.status == 201, await r.text()

    r = await w.client.get("/api/profile")
    assert r.status == 200
    data = await r.json()
    assert list(data["rubrics"]) == list(RUBRIC_SLUGS)
    assert data["rubrics"]["allergies"] == [{
        "id": allergy["id"], "added_by": "patient", "added_by_kind": "patient",
        "added_at": allergy["added_at"], "substance": "Pénicilline", "reaction": "urticaire",
        "severity": "modérée"}]
    measures = data["rubrics"]["mesures"]
    # Newest first: by date, then by the order they were added.
    assert [m["kind"] for m in measures] == ["glycemie", "tension", "taille", "poids"]
    tension = next(m for m in measures if m["kind"] == "tension")
    assert (tension["systolic"], tension["diastolic"], tension["unit"]) == (128, 82, "mmHg")
    assert next(m for m in measures if m["kind"] == "glycemie")["value"] == 1.0
    assert next(m for m in measures if m["kind"] == "glycemie")["unit"] == "g/L"
    assert data["computed"]["imc"] == {"kind": "imc", "value": 25.1, "unit": "kg/m²",
                                       "date": "2024-11-20"}

    r = await w.client.patch(f"/api/profile/allergies/{allergy['id']}", headers=h,
                             json={"severity": "sévère", "reaction": None})
    assert r.status == 200, await r.text()
    changed = await r.json()
    assert changed["severity"] == "sévère" and "reaction" not in changed
    r = await w.client.patch(f"/api/profile/allergies/{allergy['id']}", headers=h,
                             json={"severity": "terrible"})
    assert r.status == 400
    assert (await r.json())["error"].startswith("Gravité : choisissez une valeur de la liste")
    r = await w.client.delete(f"/api/profile/allergies/{allergy['id']}", headers=h)
    assert r.status == 200 and (await r.json()) == {"deleted": True}
    r = await w.client.delete(f"/api/profile/allergies/{allergy['id']}", headers=h)
    assert r.status == 404
    assert (await (await w.client.get("/api/profile")).json())["rubrics"]["allergies"] == []


async def test_api_refusals_in_french(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    r = await w.client.post("/api/profile/mesures", headers=h, json={
        "kind": "poids", "value": 720, "unit": "kg", "date": "2024-11-20"})
    assert r.status == 400
    body = await r.json()
    assert body["error"] == "Poids : la valeur doit être comprise entre 0,3 et 500 kg."
    assert body["fields"] == {"value": "La valeur doit être comprise entre 0,3 et 500 kg."}
    r = await w.client.post("/api/profile/mesures", headers=h, json={
        "kind": "tension", "systolic": "cent", "date": "2999-01-01"})
    body = await r.json()
    assert r.status == 400 and set(body["fields"]) == {"systolic", "diastolic", "date"}
    assert "La date ne peut pas être dans le futur." in body["fields"].values()
    r = await w.client.post("/api/profile/mesures", headers=h, json={
        "kind": "imc", "value": 22, "date": "2024-11-20"})
    assert r.status == 400 and "calculé" in (await r.json())["error"]
    r = await w.client.post("/api/profile/vaccinations", headers=h, json={"vaccin": "DTP"})
    body = await r.json()
    assert r.status == 400 and body["fields"]["vaccin"] == \
        "Ce champ n'existe pas dans cette rubrique."
    assert body["fields"]["vaccine"] == "Ce champ est obligatoire."
    r = await w.client.post("/api/profile/allergies", headers=h, json=["Latex"])
    assert r.status == 400 and "error" in await r.json()
    r = await w.client.post("/api/profile/allergies", headers=h, data="substance=Latex")
    assert r.status == 415
    r = await w.client.post("/api/profile/inconnue", headers=h, json={"substance": "Latex"})
    assert r.status == 404
    assert (await (await w.client.get("/api/profile")).json())["rubrics"]["mesures"] == []


async def test_api_other_patients_entries_are_unknown(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    other = await _other_patient(w.services)
    theirs = await w.services.profile.add(other, other.id, "allergies", {"substance": "Latex"})
    mine = await w.services.profile.add(w.patient, w.patient.id, "allergies",
                                        {"substance": "Arachide"})
    r = await w.client.patch(f"/api/profile/allergies/{theirs.id}", headers=h,
                             json={"substance": "X"})
    assert r.status == 404
    r = await w.client.delete(f"/api/profile/allergies/{theirs.id}", headers=h)
    assert r.status == 404
    r = await w.client.patch(f"/api/profile/traitements/{mine.id}", headers=h,
                             json={"medicine": "X"})
    assert r.status == 404  # an entry of another rubric
    r = await w.client.patch("/api/profile/allergies/99999999999", headers=h, json={})
    assert r.status == 404
    data = await (await w.client.get("/api/profile")).json()
    assert [e["substance"] for e in data["rubrics"]["allergies"]] == ["Arachide"]
    assert (await w.services.profile.get(other.id, "allergies", theirs.id)).data == {
        "substance": "Latex"}


async def test_api_needs_login(world: World) -> None:
    r = await world.client.get("/api/profile")
    assert r.status == 401


async def test_professional_entry_shows_who_added_it(logged_in: World) -> None:
    w = logged_in
    await w.services.profile.add(w.pro, w.patient.id, "mesures", {
        "kind": "tension", "systolic": 135, "diastolic": 85, "date": "2024-10-01"})
    data = await (await w.client.get("/api/profile")).json()
    entry = data["rubrics"]["mesures"][0]
    assert entry["added_by"] == "Dr Claire Martin" and entry["added_by_kind"] == "professional"
    html = await (await w.client.get("/profil/mesures")).text()
    assert "Ajouté par Dr Claire Martin" in html
    assert "Tension artérielle : 135/85 mmHg" in html


async def _csrf(w: World, path: str) -> str:
    html = await (await w.client.get(path)).text()
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:300]
    return m.group(1)


async def _post(w: World, path: str, data: dict[str, Any], csrf_from: str) -> Any:
    token = await _csrf(w, csrf_from)
    return await w.client.post(path, data={**data, "csrf": token}, allow_redirects=False)


async def test_pages_list_add_edit_delete(logged_in: World) -> None:
    w = logged_in
    r = await w.client.get("/profil")
    html = await r.text()
    assert r.status == 200 and 'href="/profil"' in html
    for rub in RUBRICS:
        assert f'href="/profil/{rub.slug}"' in html
        assert rub.title.replace("'", "&#39;") in html
    html = await (await w.client.get("/profil/allergies")).text()
    assert 'name="substance"' in html and "<script" not in html.split("</head>")[1]
    r = await _post(w, "/profil/allergies/ajouter", {"substance": "Pénicilline",
                                                     "reaction": "urticaire",
                                                     "severity": "modérée"}, "/profil/allergies")
    assert r.status == 303 and r.headers["Location"] == "/profil/allergies?ok=ajoute#confirmation"
    html = await (await w.client.get("/profil/allergies?ok=ajoute")).text()
    assert "Pénicilline" in html and "Modérée" in html and "Ajouté par vous" in html
    assert "L&#39;information a été ajoutée" in html
    entry_id = (await w.services.profile.entries(w.patient.id, "allergies"))[0].id

    html = await (await w.client.get(f"/profil/allergies/{entry_id}/modifier")).text()
    assert 'value="Pénicilline"' in html and 'value="modérée" selected' in html
    r = await _post(w, f"/profil/allergies/{entry_id}/modifier",
                    {"substance": "Amoxicilline", "reaction": "", "severity": "sévère"},
                    f"/profil/allergies/{entry_id}/modifier")
    assert r.status == 303
    row = await w.services.profile.get(w.patient.id, "allergies", entry_id)
    assert row.data == {"substance": "Amoxicilline", "severity": "sévère"}
    r = await _post(w, f"/profil/allergies/{entry_id}/modifier", {"substance": ""},
                    f"/profil/allergies/{entry_id}/modifier")
    html = await r.text()
    assert r.status == 400 and "Substance : ce champ est obligatoire." in html
    assert 'aria-invalid="true"' in html and 'id="erreur-substance"' in html

    r = await _post(w, f"/profil/allergies/{entry_id}/supprimer", {}, "/profil/allergies")
    assert r.status == 303 and "ok=supprime" in r.headers["Location"]
    assert await w.services.profile.entries(w.patient.id, "allergies") == []


async def test_measure_form_refusal_next_to_its_field(logged_in: World) -> None:
    w = logged_in
    html = await (await w.client.get("/profil/mesures")).text()
    assert 'href="/profil/mesures?type=tension#titre-ajouter"' in html
    assert "type=imc" not in html and 'name="value"' not in html
    html = await (await w.client.get("/profil/mesures?type=poids")).text()
    assert 'name="kind" value="poids"' in html and 'name="value"' in html
    assert 'name="unit"' not in html  # one unit: nothing to choose
    html = await (await w.client.get("/profil/mesures?type=glycemie")).text()
    assert '<option value="mmol/L"' in html
    r = await _post(w, "/profil/mesures/ajouter", {"kind": "poids", "value": "720",
                                                   "date": "2024-11-20"}, "/profil/mesures")
    html = await r.text()
    assert r.status == 400
    assert "Poids : la valeur doit être comprise entre 0,3 et 500 kg." in html
    field = html[html.index('id="erreur-value"'):]
    assert field.index("La valeur doit être comprise entre 0,3 et 500 kg.") < \
        field.index('name="value"')
    assert 'value="720"' in html and 'value="2024-11-20"' in html
    r = await _post(w, "/profil/mesures/ajouter", {"kind": "tension", "systolic": "128",
                                                   "diastolic": "82", "date": "2024-11-20"},
                    "/profil/mesures")
    assert r.status == 303
    for kind, value in (("poids", "72,5"), ("taille", "170")):
        r = await _post(w, "/profil/mesures/ajouter", {"kind": kind, "value": value,
                                                       "date": "2024-11-20"}, "/profil/mesures")
        assert r.status == 303
    html = await (await w.client.get("/profil/mesures")).text()
    assert "Tension artérielle : 128/82 mmHg" in html and "Poids : 72,5 kg" in html
    assert "25,1 kg/m²" in html
    r = await _post(w, "/profil/mesures/ajouter", {"kind": "imc", "value": "22",
                                                   "date": "2024-11-20"}, "/profil/mesures")
    assert r.status == 400


async def test_directive_with_a_document_and_other_patients_pages(logged_in: World) -> None:
    w = logged_in
    content = b"mes directives"
    did = (await w.services.documents.file(w.patient.id, NewDocument(
        content=content, sha256=hashlib.sha256(content).hexdigest(), filename="d.pdf",
        mime_type="application/pdf", label=Label.AUTR_DOC, meta={"title": "Mes directives"}),
        actor_account_id=w.patient.id, added_by_patient=True)).document_id
    html = await (await w.client.get(
        "/profil/entourage-volontes?type=directives-anticipees")).text()
    assert f'<option value="{did}">Mes directives' in html
    r = await _post(w, "/profil/entourage-volontes/ajouter",
                    {"kind": "directives-anticipees", "document_id": str(did)},
                    "/profil/entourage-volontes")
    assert r.status == 303
    html = await (await w.client.get("/profil/entourage-volontes")).text()
    assert "Directives anticipées" in html

    other = await _other_patient(w.services)
    theirs = await w.services.profile.add(other, other.id, "allergies", {"substance": "Latex"})
    assert (await w.client.get(f"/profil/allergies/{theirs.id}/modifier")).status == 404
    r = await _post(w, f"/profil/allergies/{theirs.id}/supprimer", {}, "/profil/allergies")
    assert r.status == 404
    assert (await w.client.get("/profil/inconnue")).status == 404
    assert (await w.client.get("/profil/allergies/abc/modifier")).status == 404
