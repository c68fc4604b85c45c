"""The medical profile's store: entries added by the patient and by a professional, listed,
changed, deleted, kept to their own profile and rubric, sealed at rest (no plaintext in the
database), bound to their row, and the checks that need the record."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from attachments.labels import Label
from dossier_bridge.errors import AccessDenied
from dossier_bridge.profile_models import ProfileEntry
from dossier_bridge.profile_store import ONE_TRUSTED_PERSON, ProfileStore
from dossier_bridge.store import NewDocument
from mailserver.app import Services
from mailserver.errors import NotFound, StoreError
from mailserver.profile import EntryInvalid
from tests.bridge.helpers import patient, pro
from tests.conftest import INS, PG_URL

MARKER = "Marqueurallergiesecrete"


def _store(services: Services, day: str = "2026-11-20T10:00:00") -> ProfileStore:
    return ProfileStore(services.db, services.keys,
                        clock=lambda: datetime.fromisoformat(day).replace(tzinfo=UTC))


async def test_add_list_change_delete_and_who_added(services: Services) -> None:
    store = _store(services)
    pt = await patient(services)
    doctor = await pro(services, "dr.claire.martin")
    allergy = await store.add(pt, pt.id, "allergies", {"substance": "Pénicilline",
                                                        "severity": "modérée"})
    assert allergy.added_by_kind == "patient"
    weight = await store.add(doctor, pt.id, "mesures", {"kind": "poids", "value": 72.5,
                                                         "date": "2026-11-01"})
    assert weight.added_by == "Dr Claire Martin" and weight.added_by_kind == "professional"
    await store.add(pt, pt.id, "mesures", {"kind": "poids", "value": 73, "date": "2026-11-15"})
    listed = await store.entries(pt.id, "mesures")
    assert [e.data["value"] for e in listed] == [73, 72.5]  # newest first
    assert {e.rubric for e in await store.entries(pt.id)} == {"allergies", "mesures"}
    assert listed[1].as_json() == {
        "id": weight.id, "added_by": "Dr Claire Martin", "added_by_kind": "professional",
        "added_at": "2026-11-20T10:00:00+00:00", "kind": "poids", "value": 72.5, "unit": "kg",
        "date": "2026-11-01"}

    changed = await store.update(pt, pt.id, "allergies", allergy.id,
                                 {"reaction": "urticaire", "severity": None})
    assert changed.data == {"substance": "Pénicilline", "reaction": "urticaire"}
    again = await store.get(pt.id, "allergies", allergy.id)
    assert again.data == changed.data and again.added_by_kind == "patient"
    with pytest.raises(EntryInvalid) as info:
        await store.update(pt, pt.id, "mesures", weight.id, {"value": 900})
    assert info.value.messages() == ["Poids : la valeur doit être comprise entre 0,3 et 500 kg."]
    assert (await store.get(pt.id, "mesures", weight.id)).data["value"] == 72.5

    await store.delete(pt, pt.id, "mesures", weight.id)
    with pytest.raises(NotFound):
        await store.get(pt.id, "mesures", weight.id)
    with pytest.raises(NotFound):
        await store.delete(pt, pt.id, "mesures", weight.id)


async def test_entries_stay_in_their_profile_and_rubric(services: Services) -> None:
    store = _store(services)
    marie = await patient(services)
    other = await patient(services, INS[1])
    entry = await store.add(marie, marie.id, "allergies", {"substance": "Latex"})
    with pytest.raises(NotFound):
        await store.get(other.id, "allergies", entry.id)
    with pytest.raises(NotFound):
        await store.get(marie.id, "traitements", entry.id)
    with pytest.raises(NotFound):
        await store.update(other, other.id, "allergies", entry.id, {"substance": "X"})
    with pytest.raises(NotFound):
        await store.delete(other, other.id, "allergies", entry.id)
    with pytest.raises(AccessDenied):
        await store.add(other, marie.id, "allergies", {"substance": "X"})
    with pytest.raises(NotFound):
        await store.add(marie, marie.id, "inconnue", {"substance": "X"})
    assert await store.entries(other.id) == []
    assert [e.data for e in await store.entries(marie.id)] == [{"substance": "Latex"}]


async def test_future_is_judged_in_paris(services: Services) -> None:
    pt = await patient(services)
    # 23:30 UTC on 20 November is already 21 November in Paris.
    store = _store(services, "2026-11-20T23:30:00")
    await store.add(pt, pt.id, "mesures", {"kind": "poids", "value": 70, "date": "2026-11-21"})
    with pytest.raises(EntryInvalid):
        await store.add(pt, pt.id, "mesures", {"kind": "poids", "value": 70,
                                               "date": "2026-11-22"})


async def test_directive_document_and_one_trusted_person(services: Services) -> None:
    store = _store(services)
    pt = await patient(services)
    other = await patient(services, INS[1])
    content = b"directives anticipees"
    doc = NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                      filename="directives.pdf", mime_type="application/pdf",
                      label=Label.AUTR_DOC)
    mine = (await services.documents.file(pt.id, doc, actor_account_id=pt.id,
                                          added_by_patient=True)).document_id
    theirs = (await services.documents.file(other.id, doc, actor_account_id=other.id,
                                            added_by_patient=True)).document_id
    await store.add(pt, pt.id, "entourage-volontes", {"kind": "directives-anticipees",
                                                      "document_id": mine})
    with pytest.raises(EntryInvalid) as info:
        await store.add(pt, pt.id, "entourage-volontes", {"kind": "directives-anticipees",
                                                          "document_id": theirs})
    assert info.value.errors == {"document_id": "Ce document n'est pas dans votre espace "
                                                "Documents."}
    first = await store.add(pt, pt.id, "entourage-volontes", {"kind": "personne-confiance",
                                                              "name": "Paul Dupont"})
    with pytest.raises(EntryInvalid) as info:
        await store.add(pt, pt.id, "entourage-volontes", {"kind": "personne-confiance",
                                                          "name": "Léa Dupont"})
    assert info.value.errors == {"kind": ONE_TRUSTED_PERSON}
    await store.update(pt, pt.id, "entourage-volontes", first.id, {"phone": "0612345678"})
    await store.add(pt, pt.id, "entourage-volontes", {"kind": "proche", "name": "Léa Dupont"})


async def test_sealed_at_rest_and_bound_to_its_row(services: Services, data_dir: Path) -> None:
    store = _store(services)
    pt = await patient(services)
    a = await store.add(pt, pt.id, "allergies", {"substance": MARKER, "reaction": MARKER})
    b = await store.add(pt, pt.id, "maladies", {"condition": "Asthme", "status": "active"})
    async with services.db.session() as s:
        rows = (await s.execute(text("SELECT * FROM profile_entries"))).all()
    assert len(rows) == 2
    for row in rows:
        for value in row:
            raw = value if isinstance(value, bytes) else str(value).encode()
            assert MARKER.encode() not in raw and b"Asthme" not in raw
    # A sealed entry moved to another row (or rubric) no longer opens.
    async with services.db.session() as s:
        sealed = (await s.execute(select(ProfileEntry.data_enc).where(
            ProfileEntry.id == a.id))).scalar_one()
        await s.execute(update(ProfileEntry).where(ProfileEntry.id == b.id).values(
            data_enc=sealed))
        await s.commit()
    with pytest.raises(StoreError):
        await store.get(pt.id, "maladies", b.id)
    assert (await store.get(pt.id, "allergies", a.id)).data["substance"] == MARKER
    await services.close()
    if not PG_URL:
        files = [p for p in data_dir.rglob("*") if p.is_file()]
        assert data_dir / "mssante.db" in files
        for path in files:
            assert MARKER.encode() not in path.read_bytes(), path
