"""ITI-65 Provide Document Bundle over real HTTP: one filing path with mail (labels,
idempotence, checks), immediate visibility to the patient, hostile bundles refused with an
OperationOutcome and nothing stored."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from attachments.labels import Label
from mailserver.app import Services
from tests.attachments.corpus import Attachment, make_cda, make_pdf
from tests.bridge.helpers import deliver_stored, filer_of, message, patient, pro
from tests.conftest import INS, PASSWORD, RPPS
from tests.fhir.conftest import SMALL_LIMIT, Fhir, basic, provide_bundle

PDF = make_pdf("Compte rendu d'examens biologiques : glycémie, créatinine.")


def _check_response(body: dict[str, Any], request: dict[str, Any]) -> None:
    Bundle.model_validate(body)
    assert body["type"] == "transaction-response"
    assert len(body["entry"]) == len(request["entry"])
    assert all(e["response"]["status"] for e in body["entry"])


async def test_provide_files_with_the_mail_labels_and_is_visible_at_once(
        fhir: Fhir, services: Services) -> None:
    pt = await patient(services)
    author = await pro(services, "dr.labo", "10", rpps=RPPS[1])
    cda = make_cda("11502-2", title="Résultats", ins=INS[0])
    bundle = provide_bundle(INS[0], [(PDF, "application/pdf", "11502-2"),
                                     (cda, "text/xml", None)])
    status, body = await fhir.post(bundle, basic(author.address, PASSWORD))
    assert status == 200, body
    _check_response(body, bundle)
    assert [e["response"]["status"] for e in body["entry"]] == ["200 OK"] + ["201 Created"] * 4
    docs = await fhir.documents.list(pt, pt.id)  # the patient sees them at once
    assert {d.label for d in docs} == {Label.BIOLOGIE}
    assert {d.type_code for d in docs} == {"11502-2"}
    assert all(d.author["rpps"] == RPPS[1] for d in docs)
    filed = [e for e in await fhir.documents.log_entries(pt.id) if e.action == "file"]
    assert [e.actor_account_id for e in filed] == [author.id, author.id]
    # The location given in the response reads back the document.
    await fhir.documents.consents.set_treating_doctor(pt.id, author)
    loc = body["entry"][2]["response"]["location"]
    async with fhir.session.get(f"{fhir.base}/{loc}",
                                headers=basic(author.address, PASSWORD)) as r:
        assert r.status == 200 and await r.read() == PDF


async def test_same_document_twice_and_by_mail_is_stored_once(
        fhir: Fhir, services: Services) -> None:
    pt = await patient(services)
    author = await pro(services, "dr.labo", "10", rpps=RPPS[1])
    auth = await fhir.token(author)
    # By mail first.
    raw = message([Attachment(PDF, "resultats.pdf", "application", "pdf")],
                  sender=author.address)
    message_id = await deliver_stored(services, pt, raw)
    outcome = await filer_of(services).run(pt.id, message_id)
    assert outcome.status == "filed"
    (mail_doc,) = await fhir.documents.list(pt, pt.id)
    # Then by ITI-65, twice: the same document (same content) is found, not stored again.
    for _ in range(2):
        status, body = await fhir.post(provide_bundle(INS[0], [(PDF, "application/pdf",
                                                                 "11502-2")]), auth)
        assert status == 200
        assert body["entry"][1]["response"] == {
            "status": "200 OK", "location": f"DocumentReference/{pt.id}-{mail_doc.id}"}
    assert len(await fhir.documents.list(pt, pt.id)) == 1


def _bad_base64(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][2]["resource"]["data"] = "JVBERi0x!!!@@"
    return bundle


def _no_binary(bundle: dict[str, Any]) -> dict[str, Any]:
    del bundle["entry"][2]
    return bundle


def _not_transaction(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["type"] = "batch"
    return bundle


def _unknown_system(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][1]["resource"]["subject"]["identifier"]["system"] = "urn:oid:1.2.3"
    return bundle


def _bad_status(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][1]["resource"]["status"] = "bogus"
    return bundle


def _bad_resource(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["size"] = "big"
    return bundle


_PDF_ONE = [(PDF, "application/pdf", "11502-2")]
HOSTILE: dict[str, tuple[Any, int]] = {
    "wrong INS in the CDA header": (provide_bundle(INS[0], [(make_cda(
        "11502-2", ins=INS[1]), "text/xml", None)]), 422),
    "incomplete INS in the CDA header": (provide_bundle(INS[0], [(make_cda(
        "11502-2", ins=INS[0][:13]), "text/xml", None)]), 422),
    "unknown patient": (provide_bundle(INS[1], _PDF_ONE), 422),
    "two INS in one submission": (provide_bundle(INS[0], _PDF_ONE, list_ins=INS[1]), 422),
    "oversized Binary": (provide_bundle(INS[0], [(b"%PDF-" + b"0" * SMALL_LIMIT,
                                                  "application/pdf", "11502-2")]), 413),
    "bad base64": (_bad_base64(provide_bundle(INS[0], _PDF_ONE)), 400),
    "not a PDF though declared one": (provide_bundle(INS[0], [(b"MZ\x90\x00 not a pdf",
                                                              "application/pdf", None)]), 422),
    "XML bomb": (provide_bundle(INS[0], [(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x '
                                          b'"xx">]><a>&x;</a>', "text/xml", None)]), 422),
    "Binary missing": (_no_binary(provide_bundle(INS[0], _PDF_ONE)), 422),
    "not a transaction": (_not_transaction(provide_bundle(INS[0], _PDF_ONE)), 422),
    "INS system unknown": (_unknown_system(provide_bundle(INS[0], _PDF_ONE)), 422),
    "invalid resource": (_bad_resource(provide_bundle(INS[0], _PDF_ONE)), 400),
    "status not current": (_bad_status(provide_bundle(INS[0], _PDF_ONE)), 422),
    "not a Bundle": ({"resourceType": "Patient"}, 400),
    "not JSON": ("{", 400),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_bundle_refused_nothing_stored(fhir: Fhir, services: Services,
                                                     case: str) -> None:
    pt = await patient(services)
    author = await pro(services, "dr.labo", "10", rpps=RPPS[1])
    bundle, expected = HOSTILE[case]
    if case == "not JSON":
        async with fhir.session.post(fhir.base, data=b"{", headers={
                **await fhir.token(author), "Content-Type": "application/fhir+json"}) as r:
            status, body = r.status, await r.json(content_type=None)
    else:
        bundle = copy.deepcopy(bundle)
        status, body = await fhir.post(bundle, await fhir.token(author))
    assert status == expected, body
    OperationOutcome.model_validate(body)
    assert await fhir.documents.list(pt, pt.id) == []
    assert not [e for e in await fhir.documents.log_entries(pt.id) if e.action == "file"]


async def test_all_or_nothing_and_csrf_content_type(fhir: Fhir, services: Services) -> None:
    pt = await patient(services)
    author = await pro(services, "dr.labo", "10", rpps=RPPS[1])
    auth = await fhir.token(author)
    bad = base64.b64encode(b"not a pdf").decode()
    bundle = provide_bundle(INS[0], [(PDF, "application/pdf", "11502-2"),
                                     (b"", "application/pdf", None)],
                            raw_data=[base64.b64encode(PDF).decode(), bad])
    status, _body = await fhir.post(bundle, auth)
    assert status == 422
    assert await fhir.documents.list(pt, pt.id) == []
    # A cross-site form cannot post: FHIR/JSON content type only.
    good = provide_bundle(INS[0], [(PDF, "application/pdf", "11502-2")])
    status, body = await fhir.post(good, basic(author.address, PASSWORD),
                                   content_type="text/plain")
    assert status == 415 and body["resourceType"] == "OperationOutcome"
    assert await fhir.documents.list(pt, pt.id) == []
