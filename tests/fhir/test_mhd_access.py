"""IHE MHD over real HTTP: every rule of the access matrix, consent, masking, the treating
doctor, authentication, IDOR attempts, the access log and the FHIR shapes (ITI-67, ITI-68)."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.operationoutcome import OperationOutcome

from attachments.labels import Label
from dossier_bridge.access import ACCESS_MATRIX
from dossier_bridge.store import DocumentStore, NewDocument
from mailserver.app import Services
from mailserver.config import Config, ListenConfig
from mailserver.directory.service import AccountInfo
from mailserver.runtime import start_runtime
from tests.bridge.helpers import TYPE_PER_LABEL, patient, pro
from tests.conftest import INS, PASSWORD, RPPS
from tests.fhir.conftest import Fhir, basic, start

STRUCTURE = "11750000001"

# IHE MHD required elements we check, per shape (Minimal/Comprehensive DocumentReference and
# the searchset Bundle of ITI-67; the ITI-65 response is checked in test_mhd_provide).
DOCREF_REQUIRED = ("masterIdentifier", "status", "type", "category", "subject", "date",
                   "securityLabel", "content")
ATTACHMENT_REQUIRED = ("contentType", "url", "size")


def _doc(label: Label) -> NewDocument:
    content = f"document {label.value}".encode()
    code, cls = TYPE_PER_LABEL[label]
    return NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                       filename=f"{label.value}.txt", mime_type="text/plain", label=label,
                       meta={"title": f"Titre {label.value}", "type_code": {"code": code},
                             "class_code": {"code": cls},
                             "author": {"rpps": RPPS[5], "name": "Dr Auteur"}})


async def _record(s: Services, store: DocumentStore) -> tuple[AccountInfo, dict[Label, int]]:
    pt = await patient(s)
    ids = {label: (await store.file(pt.id, _doc(label), actor_account_id=None)).document_id
           for label in Label}
    return pt, ids


def _labels(bundle: dict[str, Any]) -> set[Label]:
    out = set()
    for e in bundle.get("entry", []):
        if e["search"]["mode"] != "match":
            continue
        cats = [c for cat in e["resource"]["category"] for c in cat["coding"]]
        out.add(Label(next(c["code"] for c in cats if c["system"].endswith(":label"))))
    return out


def _check_shapes(bundle: dict[str, Any]) -> None:
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and "total" in bundle
    assert bundle["link"][0]["relation"] == "self"
    for e in bundle.get("entry", []):
        assert e["fullUrl"] and e["search"]["mode"] == "match"
        ref = e["resource"]
        DocumentReference.model_validate(ref)
        for name in DOCREF_REQUIRED:
            assert ref.get(name), name
        for name in ATTACHMENT_REQUIRED:
            assert ref["content"][0]["attachment"].get(name), name


@pytest.mark.parametrize("profession", sorted(ACCESS_MATRIX))
async def test_access_matrix_through_fhir(services: Services, profession: str) -> None:
    session, runner, f = await start(services)
    try:
        pt, ids = await _record(services, f.documents)
        await f.documents.consents.grant(pt.id, "structure", STRUCTURE)
        viewer = await pro(services, f"pro.{profession}", profession, rpps=RPPS[1],
                           structure_id=STRUCTURE)
        auth = await f.token(viewer)
        status, bundle = await f.search(auth, INS[0])
        assert status == 200
        _check_shapes(bundle)
        allowed = ACCESS_MATRIX[profession]
        assert _labels(bundle) == allowed
        assert bundle["total"] == len(allowed)
        for label, doc_id in ids.items():
            status, body, _r = await f.get(f"/Binary/{pt.id}-{doc_id}", auth)
            if label in allowed:
                assert status == 200 and body == f"document {label.value}".encode()
            else:
                assert status == 403
                OperationOutcome.model_validate(body)
        reads = [e for e in await f.documents.log_entries(pt.id) if e.action == "read"]
        assert len(reads) == len(allowed)
        assert {e.actor_account_id for e in reads} <= {viewer.id}
        assert (await f.documents.verify_log(pt.id)).ok
    finally:
        await session.close()
        await runner.cleanup()


async def test_consent_masking_treating_doctor_and_revocation(fhir: Fhir,
                                                              services: Services) -> None:
    pt, ids = await _record(services, fhir.documents)
    nurse = await pro(services, "infirmiere", "60", rpps=RPPS[1])
    treating = await pro(services, "medecin.traitant", "10", rpps=RPPS[2])
    nurse_auth, doctor_auth = await fhir.token(nurse), await fhir.token(treating)
    # No consent: a 403 OperationOutcome that says why, without revealing what exists; the
    # same answer as for an INS nobody knows.
    status, body = await fhir.search(nurse_auth, INS[0])
    unknown_status, unknown = await fhir.search(nurse_auth, INS[1])
    assert status == unknown_status == 403 and body == unknown
    assert "consentement" in body["issue"][0]["diagnostics"]
    team = await fhir.documents.consents.create_team("Équipe", [nurse.id])
    await fhir.documents.consents.grant(pt.id, "team", str(team))
    status, bundle = await fhir.search(nurse_auth, INS[0])
    assert _labels(bundle) == ACCESS_MATRIX["60"]
    bio = ids[Label.BIOLOGIE]
    await fhir.documents.set_masked(pt, pt.id, bio, True)
    status, bundle = await fhir.search(nurse_auth, INS[0])
    assert Label.BIOLOGIE not in _labels(bundle)
    assert (await fhir.get(f"/Binary/{pt.id}-{bio}", nurse_auth))[0] == 403
    # The treating doctor needs no consent and sees masked documents (flagged MASQUE_PS).
    await fhir.documents.consents.set_treating_doctor(pt.id, treating)
    status, bundle = await fhir.search(doctor_auth, INS[0])
    assert _labels(bundle) == set(Label)
    masked = [e["resource"] for e in bundle["entry"]
              if any(c["code"] == "MASQUE_PS" for s in e["resource"]["securityLabel"]
                     for c in s["coding"])]
    assert [m["id"] for m in masked] == [f"{pt.id}-{bio}"]
    assert (await fhir.get(f"/Binary/{pt.id}-{bio}", doctor_auth))[0] == 200
    # Revoking the consent: the nurse's next search is refused.
    assert await fhir.documents.consents.revoke(pt.id, "team", str(team))
    assert (await fhir.search(nurse_auth, INS[0]))[0] == 403


async def test_search_filters(fhir: Fhir, services: Services) -> None:
    pt, ids = await _record(services, fhir.documents)
    treating = await pro(services, "medecin.traitant", "10", rpps=RPPS[2])
    await fhir.documents.consents.set_treating_doctor(pt.id, treating)
    auth = await fhir.token(treating)
    _s, b = await fhir.search(auth, INS[0], type="http://loinc.org|11502-2")
    assert _labels(b) == {Label.BIOLOGIE}
    _s, b = await fhir.search(auth, INS[0], category="urn:oid:1.2.250.1.213.1.1.5.6|52")
    assert _labels(b) == {Label.CERT_MED, Label.DEPISTAG}
    _s, b = await fhir.search(auth, INS[0], category="urn:mssante:documents:label|RADIO_SC")
    assert _labels(b) == {Label.RADIO_SC}
    _s, b = await fhir.search(auth, INS[0], date="ge2000-01-01")
    assert b["total"] == 8
    _s, b = await fhir.search(auth, INS[0], date="lt2000-01-01")
    assert b["total"] == 0
    _s, b = await fhir.search(auth, INS[0], status="superseded")
    assert b["total"] == 0
    status, _b = await fhir.search(auth, INS[0], date="hier")
    assert status == 400


async def test_idor_other_patients_document_refused(fhir: Fhir, services: Services) -> None:
    pt, _ids = await _record(services, fhir.documents)
    other = await patient(services, INS[1])
    theirs = (await fhir.documents.file(other.id, _doc(Label.BIOLOGIE),
                                        actor_account_id=None)).document_id
    doctor = await pro(services, "medecin.traitant", "10", rpps=RPPS[2])
    await fhir.documents.consents.set_treating_doctor(pt.id, doctor)
    auth = await fhir.token(doctor)
    for rid in (f"{pt.id}-{theirs}", f"{other.id}-{theirs}", f"{pt.id}-999999", "abc",
                f"{pt.id}-{theirs}-1"):
        for path in (f"/Binary/{rid}", f"/DocumentReference/{rid}"):
            status, body, _r = await fhir.get(path, auth)
            assert status == 403, (path, status)
            assert body["resourceType"] == "OperationOutcome"
    assert not [e for e in await fhir.documents.log_entries(other.id) if e.action == "read"]


async def test_authentication(fhir: Fhir, services: Services) -> None:
    pt, ids = await _record(services, fhir.documents)
    doctor = await pro(services, "medecin.traitant", "10", rpps=RPPS[2])
    await fhir.documents.consents.set_treating_doctor(pt.id, doctor)
    # Basic from loopback over plain HTTP is allowed; the read is in the access log.
    status, body, r = await fhir.get(f"/Binary/{pt.id}-{ids[Label.CPT_REND]}",
                                     basic(doctor.address, PASSWORD))
    assert status == 200 and r.headers["Cache-Control"] == "no-store"
    last = (await fhir.documents.log_entries(pt.id))[-1]
    assert (last.action, last.actor_account_id, last.document_id) == (
        "read", doctor.id, ids[Label.CPT_REND])
    assert (await fhir.search({}, INS[0]))[0] == 401
    assert (await fhir.search({"Authorization": "Bearer mss_nope"}, INS[0]))[0] == 401
    assert (await fhir.search(basic(doctor.address, "wrong"), INS[0]))[0] == 401
    # Patients cannot use the FHIR API, even with their credentials.
    await services.directory.set_password(pt.id, PASSWORD)
    assert (await fhir.search(basic(pt.address, PASSWORD), INS[0]))[0] == 401
    # Revoked tokens stop working.
    token = await fhir.tokens.issue(doctor.id)
    assert (await fhir.search({"Authorization": f"Bearer {token}"}, INS[0]))[0] == 200
    (info,) = [t for t in await fhir.tokens.list(doctor.id) if not t.revoked][-1:]
    assert await fhir.tokens.revoke(info.id)
    assert (await fhir.search({"Authorization": f"Bearer {token}"}, INS[0]))[0] == 401


async def test_basic_lockout_applies(fhir: Fhir, services: Services) -> None:
    await _record(services, fhir.documents)
    doctor = await pro(services, "medecin", "10", rpps=RPPS[2])
    for _ in range(services.config.auth.lockout_threshold + 1):
        assert (await fhir.search(basic(doctor.address, "wrong"), INS[0]))[0] == 401
    assert (await fhir.search(basic(doctor.address, PASSWORD), INS[0]))[0] == 401


async def test_basic_refused_without_https_behind_a_proxy(services: Services) -> None:
    session, runner, f = await start(services, trusted_proxies=("127.0.0.1",))
    try:
        doctor = await pro(services, "medecin", "10", rpps=RPPS[2])
        await patient(services)
        status, body = await f.search({**basic(doctor.address, PASSWORD),
                                       "X-Forwarded-Proto": "http"}, INS[0])
        assert status == 403 and "HTTPS" in body["issue"][0]["diagnostics"]
        status, _b = await f.search({**basic(doctor.address, PASSWORD),
                                     "X-Forwarded-Proto": "https"}, INS[0])
        assert status == 403  # authenticated; refused for lack of consent only
    finally:
        await session.close()
        await runner.cleanup()


async def test_metadata_and_webmail_untouched(fhir: Fhir) -> None:
    status, body, r = await fhir.get("/metadata", {})
    assert status == 200 and r.content_type == "application/fhir+json"
    cs = CapabilityStatement.model_validate(body)
    assert cs.fhirVersion == "4.0.1"
    assert {res.type for res in cs.rest[0].resource} >= {"DocumentReference", "Binary"}
    status, body, _r = await fhir.get("/Patient", {})
    assert status == 404 and body["resourceType"] == "OperationOutcome"
    # The webmail beside it still answers with its own pages and headers.
    root = fhir.base.removesuffix("/fhir")
    async with fhir.session.get(f"{root}/connexion") as resp:
        assert resp.status == 200 and "Content-Security-Policy" in resp.headers



async def test_runtime_serves_fhir_beside_the_webmail(config: Config,
                                                      services: Services) -> None:
    rt = await start_runtime(config, ListenConfig(http="127.0.0.1:0"), services=services)
    try:
        host, port = rt.ports["http"]
        doctor = await pro(services, "medecin", "10", rpps=RPPS[2])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{host}:{port}/fhir/metadata") as r:
                assert r.status == 200
                assert (await r.json(content_type=None))["resourceType"] == "CapabilityStatement"
            async with http.get(f"http://{host}:{port}/fhir/DocumentReference", params={
                    "patient.identifier": f"urn:oid:1.2.250.1.213.1.4.10|{INS[0]}"},
                    headers=basic(doctor.address, PASSWORD)) as r:
                assert r.status == 403  # authenticated through the runtime's directory
    finally:
        rt.services = services
        await rt.close()
