"""Access rules: the profession × label matrix, consent, masking, treating doctor, patient edits,
and the tamper-evident access log."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from sqlalchemy import select, update

from attachments.labels import Label
from dossier_bridge.access import (
    ACCESS_MATRIX,
    PROFESSIONS,
    DocFacts,
    Viewer,
    ViewerRole,
    may_delete,
    may_read,
    may_relabel,
)
from dossier_bridge.errors import AccessDenied, DocumentNotFound
from dossier_bridge.models import DossierLogEntry
from dossier_bridge.store import DocumentStore, NewDocument
from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from tests.bridge.helpers import patient, pro, store_of
from tests.conftest import RPPS

SHARED = Path("/work/shared/domain")
STRUCTURE = "11750000001"


def _csv(name: str) -> list[dict[str, str]]:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_professions_copy_matches_csv() -> None:
    assert {r["code"]: r["display_fr"] for r in _csv("professions.csv")} == PROFESSIONS


def test_matrix_copy_matches_csv() -> None:
    rows = _csv("access-matrix.csv")
    expected = {r["profession"]: frozenset(Label(k) for k, v in r.items()
                                           if k != "profession" and v == "Y") for r in rows}
    assert expected == ACCESS_MATRIX
    assert set(ACCESS_MATRIX) <= set(PROFESSIONS)


@pytest.mark.parametrize("masked,hidden,by_patient,review",
                         list(itertools.product([False, True], repeat=4)))
def test_pure_rules(masked: bool, hidden: bool, by_patient: bool, review: bool) -> None:
    for label in Label:
        doc = DocFacts(label, masked, hidden, by_patient, review)
        assert may_read(Viewer(ViewerRole.PATIENT, 1), doc) is (not hidden)
        assert may_read(Viewer(ViewerRole.TREATING_DOCTOR, 2, "10"), doc)
        assert not may_read(Viewer(ViewerRole.NO_CONSENT, 3, "10"), doc)
        assert not may_read(Viewer(ViewerRole.OTHER, 4), doc)
        for profession, labels in ACCESS_MATRIX.items():
            consented = Viewer(ViewerRole.CONSENTED, 5, profession)
            assert may_read(consented, doc) is (not masked and label in labels)
            assert not may_relabel(consented, doc) and not may_delete(consented, doc)
        patient_viewer = Viewer(ViewerRole.PATIENT, 1)
        assert may_delete(patient_viewer, doc) is by_patient
        assert may_relabel(patient_viewer, doc) is (by_patient or review)


def _doc(label: Label, n: int, **kw: object) -> NewDocument:
    content = f"document {label.value} {n}".encode()
    import hashlib

    return NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                       filename=f"{label.value}-{n}.txt", mime_type="text/plain", label=label,
                       meta={"title": f"{label.value} {n}"}, **kw)  # type: ignore[arg-type]


async def _record(s: Services) -> tuple[DocumentStore, AccountInfo, dict[Label, int]]:
    store = store_of(s)
    pt = await patient(s)
    ids = {}
    for label in Label:
        ids[label] = (await store.file(pt.id, _doc(label, 1), actor_account_id=None)).document_id
    return store, pt, ids


async def test_matrix_exhaustively_through_the_store(services: Services) -> None:
    store, pt, ids = await _record(services)
    await store.consents.grant(pt.id, "structure", STRUCTURE)
    rpps = itertools.cycle(RPPS)
    for profession, allowed in sorted(ACCESS_MATRIX.items()):
        viewer = await pro(services, f"pro.{profession}", profession, rpps=next(rpps),
                           structure_id=STRUCTURE)
        seen = {d.label for d in await store.list(viewer, pt.id)}
        assert seen == allowed, profession
        for label, doc_id in ids.items():
            if label in allowed:
                _info, content = await store.read(viewer, pt.id, doc_id)
                assert content == f"document {label.value} 1".encode()
            else:
                with pytest.raises(DocumentNotFound):
                    await store.read(viewer, pt.id, doc_id)
    reads = await store.access_log(pt, pt.id, reads_only=True)
    assert len(reads) == sum(len(v) for v in ACCESS_MATRIX.values())
    assert (await store.verify_log(pt.id)).ok


async def test_consent_per_team_or_structure_not_per_professional(services: Services) -> None:
    store, pt, ids = await _record(services)
    nurse = await pro(services, "infirmiere", "60", rpps=RPPS[1])
    other = await pro(services, "medecin.hors.equipe", "10", rpps=RPPS[2],
                      structure_id="11750000002")
    # Without consent: adds documents, sees none (not even their own).
    added = await store.upload(nurse, pt.id, b"bilan infirmier", filename="bilan.txt",
                               mime_type="text/plain", label=Label.CPT_REND)
    assert await store.list(nurse, pt.id) == []
    with pytest.raises(DocumentNotFound):
        await store.read(nurse, pt.id, added.document_id)
    team = await store.consents.create_team("Équipe diabète", [nurse.id])
    await store.consents.grant(pt.id, "team", str(team))
    labels = {d.label for d in await store.list(nurse, pt.id)}
    assert labels == ACCESS_MATRIX["60"]
    assert await store.list(other, pt.id) == []  # not in the team, not in the structure
    assert await store.consents.revoke(pt.id, "team", str(team))
    assert await store.list(nurse, pt.id) == []
    with pytest.raises(AccessDenied):
        await store.access_log(nurse, pt.id)


async def test_masking_and_the_treating_doctor(services: Services) -> None:
    store, pt, ids = await _record(services)
    treating = await pro(services, "medecin.traitant", "10", rpps=RPPS[1])
    consented = await pro(services, "specialiste", "10", rpps=RPPS[2], structure_id=STRUCTURE)
    await store.consents.grant(pt.id, "structure", STRUCTURE)
    await store.consents.set_treating_doctor(pt.id, treating)
    target = ids[Label.BIOLOGIE]
    await store.set_masked(pt, pt.id, target, True)
    assert target not in {d.id for d in await store.list(consented, pt.id)}
    with pytest.raises(DocumentNotFound):
        await store.read(consented, pt.id, target)
    # The treating doctor sees everything, masked included, without any consent.
    await store.consents.revoke(pt.id, "structure", STRUCTURE)
    assert {d.id for d in await store.list(treating, pt.id)} == set(ids.values())
    info, _ = await store.read(treating, pt.id, target)
    assert info.masked
    # The patient still sees the masked document and may unmask it.
    assert target in {d.id for d in await store.list(pt, pt.id, masked=True)}
    await store.set_masked(pt, pt.id, target, False)
    await store.consents.grant(pt.id, "structure", STRUCTURE)
    assert target in {d.id for d in await store.list(consented, pt.id)}
    with pytest.raises(AccessDenied):
        await store.set_masked(treating, pt.id, target, True)
    log = await store.access_log(pt, pt.id, reads_only=True)
    assert [(e.actor_account_id, e.document_id) for e in log] == [(treating.id, target)]
    assert log[0].detail["treating_doctor"] is True and log[0].detail["rpps"] == RPPS[1]


async def test_masque_ps_and_invisible_patient_from_metadata(services: Services) -> None:
    store = store_of(services)
    pt = await patient(services)
    dr = await pro(services, "dr.x", "10", structure_id=STRUCTURE)
    await store.consents.grant(pt.id, "structure", STRUCTURE)
    masked = await store.file(pt.id, _doc(Label.CPT_REND, 2, masked=True), actor_account_id=None)
    hidden = await store.file(pt.id, _doc(Label.CPT_REND, 3, hidden_from_patient=True),
                              actor_account_id=None)
    assert {d.id for d in await store.list(dr, pt.id)} == {hidden.document_id}
    assert {d.id for d in await store.list(pt, pt.id)} == {masked.document_id}


async def test_patient_edits_and_deletes_only_own_documents(services: Services) -> None:
    store, pt, ids = await _record(services)
    own = await store.upload(pt, pt.id, b"%PDF-1.4 mes vaccins", filename="vaccins.pdf",
                             mime_type="application/pdf", label=Label.DEPISTAG)
    info = await store.get(pt, pt.id, own.document_id)
    assert info.added_by_patient and info.type_code == "DOCPAT06"
    await store.relabel(pt, pt.id, own.document_id, Label.SYNTHESE)
    assert (await store.get(pt, pt.id, own.document_id)).label is Label.SYNTHESE
    with pytest.raises(AccessDenied):
        await store.relabel(pt, pt.id, ids[Label.CPT_REND], Label.BIOLOGIE)
    with pytest.raises(AccessDenied):
        await store.delete(pt, pt.id, ids[Label.CPT_REND])
    # A document flagged for review may be relabelled by the patient (then it is no longer).
    flagged = await store.file(pt.id, _doc(Label.AUTR_DOC, 9, needs_review=True),
                               actor_account_id=None)
    await store.relabel(pt, pt.id, flagged.document_id, Label.CERT_MED)
    after = await store.get(pt, pt.id, flagged.document_id)
    assert after.label is Label.CERT_MED and not after.needs_review
    await store.delete(pt, pt.id, own.document_id)
    with pytest.raises(DocumentNotFound):
        await store.get(pt, pt.id, own.document_id)
    other = await patient(services, "185127510812395")
    with pytest.raises(DocumentNotFound):
        await store.read(other, pt.id, ids[Label.CPT_REND])
    actions = [e.action for e in await store.access_log(pt, pt.id)]
    assert actions[-4:] == ["relabel", "file", "relabel", "delete"]
    assert (await store.verify_log(pt.id)).ok


@pytest.mark.parametrize("column", ["action", "actor_account_id", "document_id", "detail_enc",
                                    "at", "prev_hash", "entry_hash", "seq", "delete"])
async def test_tampering_with_the_log_is_detected(services: Services, column: str) -> None:
    store, pt, ids = await _record(services)
    dr = await pro(services, "dr.y", "10", structure_id=STRUCTURE)
    await store.consents.grant(pt.id, "structure", STRUCTURE)
    await store.read(dr, pt.id, ids[Label.CPT_REND])
    await store.read(dr, pt.id, ids[Label.BIOLOGIE])
    before = await store.log_entries(pt.id)
    assert [e.action for e in before[8:]] == ["consent_grant", "read", "read"]
    assert (await store.verify_log(pt.id)).ok
    async with services.db.session() as s:
        row = (await s.execute(select(DossierLogEntry).where(
            DossierLogEntry.patient_account_id == pt.id, DossierLogEntry.seq == 10))).scalar_one()
        values: dict[str, object] = {
            "action": {"action": "consent_grant"},
            "actor_account_id": {"actor_account_id": pt.id},
            "document_id": {"document_id": ids[Label.SYNTHESE]},
            "detail_enc": {"detail_enc": row.detail_enc[:-1] + bytes([row.detail_enc[-1] ^ 1])},
            "at": {"at": row.at.replace(year=2020)},
            "prev_hash": {"prev_hash": "1" * 64},
            "entry_hash": {"entry_hash": "2" * 64},
            "seq": {"seq": 99},
        }.get(column, {})  # type: ignore[assignment]
        if column == "delete":
            await s.delete(row)
        else:
            await s.execute(update(DossierLogEntry).where(DossierLogEntry.id == row.id)
                            .values(**values))
        await s.commit()
    report = await store.verify_log(pt.id)
    assert not report.ok
    assert report.first_bad_seq is not None and report.first_bad_seq <= 11
