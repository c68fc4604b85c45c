"""Filing pipeline: messages with XDM packages, bare CDA, PDFs, images, hostile archives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attachments.labels import Label
from dossier_bridge.api import DocumentFilingsView
from dossier_bridge.filing import FilingOutcome
from dossier_bridge.pharmacy import DossierPharmacies
from mailserver.app import Services
from mailserver.reports.mdn import IntegrationError, parse_mdn
from tests.attachments.corpus import (
    Attachment,
    XdmDoc,
    make_cda,
    make_pdf,
    make_png,
    make_zip,
)
from tests.bridge.helpers import (
    TYPE_PER_LABEL,
    XDM_HEADERS,
    deliver_stored,
    filer_of,
    message,
    patient,
    pro,
    store_of,
    xdm_attachment,
)
from tests.conftest import DOMAIN, INS, PASSWORD

SENDER = f"dr.martin@{DOMAIN}"


def _pdf(text: str | None, name: str = "document.pdf") -> Attachment:
    return Attachment(make_pdf(text), name, "application", "pdf")


async def _inbox(s: Services, account_id: int) -> list[bytes]:
    folder = await s.store.get_folder(account_id, "INBOX")
    return [await s.store.read_raw(m.id) for m in await s.store.list_messages(folder.id)]


async def test_every_label_is_reached_and_metadata_kept(services: Services) -> None:
    dr = await pro(services, "dr.martin")
    pt = await patient(services)
    docs = [XdmDoc(make_cda(code, title=f"Doc {label.value}"), f"DOC{i:04d}.XML", code, cls,
                   title=f"Doc {label.value}")
            for i, (label, (code, cls)) in enumerate(TYPE_PER_LABEL.items(), start=1)]
    raw = message([xdm_attachment(docs), _pdf(None, "scan.pdf"),
                   Attachment(make_png(), "photo.png", "image", "png")],
                  sender=SENDER, headers=XDM_HEADERS)
    mid = await deliver_stored(services, pt, raw)
    out = await filer_of(services).run(pt.id, mid)
    assert out.status == "filed" and out.error is None
    listed = await store_of(services).list(pt, pt.id)
    assert {d.label for d in listed} == set(Label)
    by_title = {d.title: d for d in listed}
    cr = by_title["Doc CPT_REND"]
    assert cr.type_code == "11488-4"
    assert cr.author["rpps"] == "99700218896" and cr.author["name"] == "Émile MARTIN"
    assert cr.author["profession"] == "10"
    assert cr.date == datetime(2025, 1, 15, 9, 30, tzinfo=UTC)
    assert cr.meta["source"]["message_id"] == mid and cr.source_message_id == mid
    assert cr.added_by_account_id == dr.id and not cr.added_by_patient
    # A PDF without text and an image: low confidence, "Autres documents", flagged for review.
    scan = next(d for d in listed if d.filename == "scan.pdf")
    assert scan.label is Label.AUTR_DOC and scan.needs_review
    # The access log has one "file" entry per document, and the chain verifies.
    entries = await store_of(services).access_log(pt, pt.id)
    assert [e.action for e in entries] == ["file"] * len(listed)
    assert (await store_of(services).verify_log(pt.id)).ok
    names = dict(await DocumentFilingsView(store_of(services)).filings_for_message(pt.id, mid))
    assert names["scan.pdf"] == "Autres documents"
    assert names["DOC0001.XML"] == Label.RADIO_SC.display_fr


async def test_pdf_with_text_and_bare_cda_are_classified(services: Services) -> None:
    await pro(services, "dr.martin")
    pt = await patient(services)
    raw = message([_pdf("Compte rendu d'examens biologiques\nHémoglobine glycquée 6,1 %\n"
                        "Créatinine, glycémie à jeun, bilan lipidique", "resultats.pdf"),
                   Attachment(make_cda("89601-9", title="Certificat"), "cert.xml", "text", "xml")],
                  sender=SENDER)
    mid = await deliver_stored(services, pt, raw)
    assert (await filer_of(services).run(pt.id, mid)).status == "filed"
    labels = {d.filename: d.label for d in await store_of(services).list(pt, pt.id)}
    assert labels == {"resultats.pdf": Label.BIOLOGIE, "cert.xml": Label.CERT_MED}


async def test_refiling_is_idempotent(services: Services) -> None:
    await pro(services, "dr.martin")
    pt = await patient(services)
    xdm = xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML")])
    first = await deliver_stored(services, pt, message([xdm], sender=SENDER, msgid="<a@x>"))
    second = await deliver_stored(services, pt, message([xdm], sender=SENDER, msgid="<b@x>"))
    filer = filer_of(services)
    out1 = await filer.run(pt.id, first)
    again = await filer.run(pt.id, first)  # the job ran twice
    out2 = await filer.run(pt.id, second)  # the same document sent twice
    assert [c for _, _, c in out1.documents] == [True]
    assert again.status == "filed"
    assert [c for _, _, c in out2.documents] == [False]
    assert out2.documents[0][0] == out1.documents[0][0]
    assert len(await store_of(services).list(pt, pt.id)) == 1
    assert len(await store_of(services).access_log(pt, pt.id)) == 1
    # The second message still shows where its attachment is filed.
    assert await DocumentFilingsView(store_of(services)).filings_for_message(pt.id, second) == [
        ("DOC0001.XML", "Comptes rendus")]


async def _mdn_case(services: Services, raw: bytes) -> tuple[FilingOutcome, list[bytes]]:
    dr = await pro(services, "dr.martin")
    pt = await patient(services)
    mid = await deliver_stored(services, pt, raw)
    out = await filer_of(services).run(pt.id, mid)
    return out, await _inbox(services, dr.id)


def _dnt(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**XDM_HEADERS, "Disposition-Notification-To": SENDER, **(extra or {})}


async def test_ins_mismatch_is_not_filed_and_answered_904(services: Services) -> None:
    other = "185127510812395"
    raw = message([xdm_attachment([XdmDoc(make_cda(ins=other), "DOC0001.XML", ins=other)]),
                   _pdf("Compte rendu")], sender=SENDER, headers=_dnt())
    out, inbox = await _mdn_case(services, raw)
    assert out.status == "not_filed" and out.error is IntegrationError.INS_MISMATCH
    assert out.mdn == "sent"
    mdn = parse_mdn(inbox[0])
    assert mdn.disposition == "processed" and mdn.error_code == 904
    pt = await services.directory.by_ins(INS[0])
    assert pt is not None and await store_of(services).list(pt, pt.id) == []


async def test_xdm_and_cda_disagree_904(services: Services) -> None:
    raw = message([xdm_attachment([XdmDoc(make_cda(ins="185127510812395"), "DOC0001.XML")])],
                  sender=SENDER, headers=_dnt())
    out, inbox = await _mdn_case(services, raw)
    assert out.error is IntegrationError.INS_MISMATCH
    assert parse_mdn(inbox[0]).error_code == 904


async def test_incomplete_ins_905(services: Services) -> None:
    short = INS[0][:13]
    raw = message([xdm_attachment([XdmDoc(make_cda(ins=short), "DOC0001.XML", ins=short)])],
                  sender=SENDER, headers=_dnt())
    out, inbox = await _mdn_case(services, raw)
    assert out.error is IntegrationError.INCOMPLETE_INS
    assert parse_mdn(inbox[0]).error_code == 905


async def test_announced_ins_missing_903(services: Services) -> None:
    raw = message([_pdf("Compte rendu de consultation")], sender=SENDER, headers=_dnt())
    out, inbox = await _mdn_case(services, raw)
    assert out.error is IntegrationError.NO_INS and out.status == "not_filed"
    assert parse_mdn(inbox[0]).error_code == 903


async def test_wrong_xdm_version_900(services: Services) -> None:
    raw = message([xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML")])], sender=SENDER,
                  headers=_dnt(), subject="XDM/2.0/DDM+CR DUPONT Marie 19790315")
    out, inbox = await _mdn_case(services, raw)
    assert out.error is IntegrationError.WRONG_VERSION
    assert parse_mdn(inbox[0]).error_code == 900


async def test_hostile_archive_is_skipped_906_and_the_rest_filed(services: Services) -> None:
    evil = make_zip([("README.TXT", b"x"), ("../../etc/passwd", b"root"),
                     ("IHE_XDM/SUBSET01/METADATA.XML", b"<x/>")])
    raw = message([Attachment(evil, "IHE_XDM.ZIP", "application", "zip"),
                   _pdf("Ordonnance : amoxicilline 1 g", "ordonnance.pdf")],
                  sender=SENDER, headers={"Disposition-Notification-To": SENDER})
    out, inbox = await _mdn_case(services, raw)
    assert out.status == "partial" and out.error is IntegrationError.OTHER
    assert parse_mdn(inbox[0]).error_code == 906
    pt = await services.directory.by_ins(INS[0])
    assert pt is not None
    assert [d.filename for d in await store_of(services).list(pt, pt.id)] == ["ordonnance.pdf"]


async def test_success_receipt_and_no_receipt_without_request(services: Services) -> None:
    raw = message([xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML")])], sender=SENDER,
                  headers=_dnt())
    out, inbox = await _mdn_case(services, raw)
    assert out.status == "filed" and out.mdn == "sent"
    mdn = parse_mdn(inbox[0])
    assert mdn.disposition == "processed" and mdn.error_code is None and not mdn.modifiers
    pt = await services.directory.by_ins(INS[0])
    assert pt is not None
    plain = await deliver_stored(services, pt, message([_pdf("Compte rendu")], sender=SENDER))
    assert (await filer_of(services).run(pt.id, plain)).mdn == "none"


async def test_receipt_never_goes_to_a_patient(services: Services) -> None:
    await patient(services, INS[1])
    raw = message([xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML")])], sender=SENDER,
                  headers={**XDM_HEADERS,
                           "Disposition-Notification-To": f"{INS[1]}@patient.{DOMAIN}"})
    out, _ = await _mdn_case(services, raw)
    assert out.status == "filed" and out.mdn == "undeliverable"
    other = await services.directory.by_ins(INS[1])
    assert other is not None and await _inbox(services, other.id) == []


async def test_recipient_not_a_patient_is_not_filed(services: Services) -> None:
    dr = await pro(services, "dr.martin")
    colleague = await pro(services, "dr.durand", rpps="10000000017")
    mid = await deliver_stored(services, colleague,
                               message([_pdf("Compte rendu")], sender=dr.address))
    out = await filer_of(services).run(colleague.id, mid)
    assert out.status == "not_filed" and out.reason == "recipient_not_patient"
    assert await store_of(services).list(colleague, colleague.id) == []


async def test_large_documents_go_to_blobs_and_nothing_is_in_clear(
        services: Services, data_dir: Path) -> None:
    await pro(services, "dr.martin")
    pt = await patient(services)
    marker = "MARQUEURSECRETDOSSIER"
    big = make_pdf(f"Compte rendu {marker} " + "x" * 60, pages=1) + b"\n%" + \
        (marker.encode() + b" ") * 20000
    cda = make_cda(title=f"Titre {marker}")
    raw = message([Attachment(big, f"{marker}.pdf", "application", "pdf"),
                   xdm_attachment([XdmDoc(cda, "DOC0001.XML", title=f"Titre {marker}")])],
                  sender=SENDER)
    mid = await deliver_stored(services, pt, raw)
    assert (await filer_of(services).run(pt.id, mid)).status == "filed"
    store = store_of(services)
    docs = await store.list(pt, pt.id)
    assert len(docs) == 2
    _, content = await store.read(pt, pt.id, next(d.id for d in docs if d.size == len(big)))
    assert content == big
    await services.close()
    needle = marker.encode()
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    blobs = [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]
    assert blobs, "the large document should live in the blob store"


async def test_dispensation_opens_the_pharmacy_exception(services: Services) -> None:
    pharmacy = await services.directory.add_organisation(
        email=f"pharmacie.centrale@{DOMAIN}", name="Pharmacie Centrale",
        structure_id="11750000001", password=PASSWORD, profession="21")
    pt = await patient(services)
    now = datetime.now(UTC)
    recent = (now - timedelta(days=30)).strftime("%Y%m%d%H%M%S+0000")
    old = (now - timedelta(days=400)).strftime("%Y%m%d%H%M%S+0000")
    source = DossierPharmacies(services.db, services.keys)
    # A dispensation older than 12 months does not count.
    old_msg = message([Attachment(make_cda("60593-1", title="Dispensation", effective=old),
                                  "disp-old.xml", "text", "xml")], sender=pharmacy.address)
    await filer_of(services).run(pt.id, await deliver_stored(services, pt, old_msg))
    assert await source.pharmacies_for(pt.id) == frozenset()
    patient_party = await services.delivery.party_of(pt)
    denied = await services.delivery.check_rcpt(patient_party, pharmacy.address)
    # (another document id: the same CDA id would be the same document, filed once)
    fresh = make_cda("60593-1", title="Dispensation", effective=recent).replace(
        b'extension="DOC-42"', b'extension="DOC-43"')
    new_msg = message([Attachment(fresh, "disp.xml", "text", "xml")], sender=pharmacy.address)
    await filer_of(services).run(pt.id, await deliver_stored(services, pt, new_msg))
    assert await source.pharmacies_for(pt.id) == frozenset({pharmacy.address})
    # Wired into the send policy by open_services: the patient may now write first.
    wired = services.delivery.pharmacies
    assert wired is not None and await wired.pharmacies_for(pt.id) == {pharmacy.address}
    report = await services.delivery.deliver(
        patient_party, pt.address, [pharmacy.address],
        b"From: " + pt.address.encode() + b"\r\nTo: " + pharmacy.address.encode()
        + b"\r\nSubject: question\r\nMessage-ID: <q1@x>\r\n\r\nBonjour\r\n", authenticated=pt)
    assert report.accepted == [pharmacy.address]
    assert denied.allowed is True  # RCPT is lenient; DATA time decides (checked above)



@pytest.mark.parametrize("status", ["pending", "opposed", "closed", "suspended"])
async def test_nothing_is_filed_for_a_patient_whose_account_is_not_open(
        services: Services, status: str) -> None:
    # The send policy refuses such recipients; a job queued before the status changed (the
    # patient opposed or closed in between) must still file nothing.
    raw = message([xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML")])], sender=SENDER,
                  headers=_dnt())
    dr = await pro(services, "dr.martin")
    pt = await patient(services)
    mid = await deliver_stored(services, pt, raw)
    await services.directory.set_status(pt.id, status)
    out = await filer_of(services).run(pt.id, mid)
    assert out.status == "not_filed" and out.reason == "patient_not_open"
    assert out.error is IntegrationError.UNKNOWN_PATIENT
    assert parse_mdn((await _inbox(services, dr.id))[0]).error_code == 902
    assert await store_of(services).list(pt, pt.id) == []
    assert await store_of(services).access_log(pt, pt.id) == []
