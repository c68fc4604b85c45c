"""analyse(): whole messages in, classified documents out."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from attachments import DocumentSource, Label, Reason, analyse, analyse_message
from attachments.pdftext import pdf_text
from tests.attachments.corpus import (
    INS,
    RPPS,
    Attachment,
    XdmDoc,
    make_cda,
    make_message,
    make_pdf,
    make_png,
    make_xdm,
    make_zip,
    xxe,
)

XDM_HEADERS = {"X-MSS-CODECDA": "11488-4", "X-MSS-INS": "O", "X-MSS-NIL": "LogicielX"}


def _zip_attachment(data: bytes, name: str = "IHE_XDM.ZIP") -> Attachment:
    return Attachment(data, name, "application", "zip")


def test_xdm_message_yields_documents_not_the_zip() -> None:
    cda = make_cda("11488-4", title="CR consultation")
    pdf_in_zip = make_pdf("Résultats de biologie")
    archive = make_xdm(
        [
            XdmDoc(cda, "DOC0001.XML", "11488-4", "10", title="CR consultation"),
            XdmDoc(
                pdf_in_zip,
                "DOC0002.PDF",
                "11502-2",
                "10",
                "application/pdf",
                "Biologie",
                confidentiality=("N", "INVISIBLE_PATIENT"),
            ),
        ]
    )
    rendering = make_pdf("Compte rendu de consultation")
    msg = make_message(
        [_zip_attachment(archive), Attachment(rendering, "CR.pdf", "application", "pdf")],
        subject="XDM/1.0/DDM+Compte rendu DUPONT Jeanne 01/03/1979",
        headers=XDM_HEADERS,
    )
    analysis = analyse_message(msg.as_bytes())
    assert analysis.refusal is None
    assert analysis.facts.mss_ins == "O" and analysis.facts.codes_cda == ("11488-4",)
    docs = analysis.documents
    assert [d.source for d in docs] == [
        DocumentSource.XDM,
        DocumentSource.XDM,
        DocumentSource.CONTENT,
    ]
    cr, bio, pdf = docs
    assert (cr.label, bio.label, pdf.label) == (Label.CPT_REND, Label.BIOLOGIE, Label.CPT_REND)
    assert cr.content == cda and bio.content == pdf_in_zip and pdf.content == rendering
    assert cr.patient_ins is not None and cr.patient_ins.value == INS
    assert cr.author is not None and cr.author.rpps == RPPS
    assert cr.author.role is not None and cr.author.role.display == "Médecin"
    assert cr.type_code is not None and cr.type_code.code == "11488-4"
    assert cr.class_code is not None and cr.class_code.code == "10"
    assert cr.creation_time is not None and cr.effective_time is not None  # XDM + CDA
    assert cr.set_id == "1.2.250.1.999.2^SET-1" and cr.version == 2
    assert cr.filename == "DOC0001.XML" and cr.mime_type == "text/xml"
    assert cr.part_path == "2/IHE_XDM/SUBSET01/DOC0001.XML"
    assert bio.confidentiality == ("N", "INVISIBLE_PATIENT")
    assert bio.unique_id == "1.2.250.1.999.3.2"
    assert all(d.refusal is None for d in docs)
    assert analyse(msg.as_bytes()) == list(docs)


def test_rendering_identical_to_archive_document_is_dropped() -> None:
    pdf = make_pdf("Ordonnance")
    archive = make_xdm([XdmDoc(pdf, "DOC0001.PDF", "57833-6", "42", "application/pdf")])
    msg = make_message(
        [_zip_attachment(archive), Attachment(pdf, "ordo.pdf", "application", "pdf")]
    )
    [doc] = analyse(msg.as_bytes())
    assert doc.source is DocumentSource.XDM and doc.label is Label.ORD_SOIN


def test_ins_mismatch_between_xdm_and_cda() -> None:
    cda = make_cda(ins="180012345678901")
    msg = make_message([_zip_attachment(make_xdm([XdmDoc(cda)]))])
    [doc] = analyse(msg.as_bytes())
    assert doc.refusal is not None and doc.refusal.reason is Reason.INS_MISMATCH


def test_bad_hash_document_is_refused_but_kept() -> None:
    cda = make_cda()
    msg = make_message([_zip_attachment(make_xdm([XdmDoc(cda, declared_hash="a" * 40)]))])
    [doc] = analyse(msg.as_bytes())
    assert doc.refusal is not None and doc.refusal.reason is Reason.HASH_MISMATCH
    assert doc.content == cda


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (make_xdm([XdmDoc(make_cda())], extra=[("../x", b"x")]), Reason.UNSAFE_PATH),
        (make_xdm([XdmDoc(make_cda())], metadata=xxe("<x/>")), Reason.XML_FORBIDDEN),
        (
            make_xdm([XdmDoc(make_cda())], extra=[("IHE_XDM/SUBSET01/A.ZIP", b"PK")]),
            Reason.NESTED_ARCHIVE,
        ),
        (b"PK\x03\x04 truncated", Reason.NOT_A_ZIP),
    ],
    ids=["traversal", "xxe", "nested-zip", "truncated-zip"],
)
def test_hostile_archive_yields_one_refused_document(archive: bytes, reason: Reason) -> None:
    msg = make_message([_zip_attachment(archive)])
    [doc] = analyse(msg.as_bytes())
    assert doc.refusal is not None and doc.refusal.reason is reason
    assert doc.label is Label.AUTR_DOC and doc.needs_review
    assert doc.content == archive


def test_plain_zip_is_an_opaque_document() -> None:
    archive = make_zip([("photos/radio1.jpg", b"\xff\xd8\xff")])
    [doc] = analyse(make_message([_zip_attachment(archive, "radios.zip")]).as_bytes())
    assert (
        doc.refusal is None and doc.label is Label.RADIO_SC and doc.source is DocumentSource.CONTENT
    )


def test_standalone_cda() -> None:
    cda = make_cda("60591-5", title="Volet de synthèse médicale", confidentiality="V")
    msg = make_message([Attachment(cda, "VSM.XML", "text", "xml")])
    [doc] = analyse(msg.as_bytes())
    assert doc.source is DocumentSource.CDA and doc.label is Label.SYNTHESE
    assert doc.confidentiality == ("V",) and doc.title == "Volet de synthèse médicale"
    assert doc.patient_ins is not None and doc.author is not None and doc.author.rpps == RPPS


def test_standalone_cda_with_xxe_is_refused() -> None:
    msg = make_message([Attachment(xxe(), "doc.xml", "text", "xml")])
    [doc] = analyse(msg.as_bytes())
    assert doc.refusal is not None and doc.refusal.reason is Reason.XML_FORBIDDEN


def test_pdf_text_extraction_bounded() -> None:
    pdf = make_pdf("Compte rendu page", pages=6)
    assert "Compte rendu" in pdf_text(pdf)
    from attachments import Limits

    assert pdf_text(pdf, Limits(max_pdf_pages=2)).count("Compte rendu") == 2
    assert pdf_text(pdf, Limits(max_pdf_bytes=10)) == ""
    assert pdf_text(b"%PDF-1.7 garbage") == ""
    assert pdf_text(make_pdf(None)) == ""


# Eight messages, one per label, through different paths (codes, CDA, PDF text, filename, subject).
_LABEL_CASES = [
    (
        "radio-pdf-text",
        Attachment(
            make_pdf("Echographie abdominale: foie normal"), "doc.pdf", "application", "pdf"
        ),
        "Résultat",
        Label.RADIO_SC,
    ),
    (
        "synthese-cda",
        Attachment(make_cda("60591-5"), "DOC.XML", "text", "xml"),
        "VSM",
        Label.SYNTHESE,
    ),
    (
        "ordonnance-pdf-text",
        Attachment(
            make_pdf("ORDONNANCE\nAmoxicilline 1 g, 2 fois par jour"),
            "scan001.pdf",
            "application",
            "pdf",
        ),
        "",
        Label.ORD_SOIN,
    ),
    (
        "cr-xdm",
        _zip_attachment(make_xdm([XdmDoc(make_cda("34112-3"), type_code="34112-3")])),
        "XDM/1.0/DDM+CR",
        Label.CPT_REND,
    ),
    (
        "biologie-pdf-text",
        Attachment(
            make_pdf("Laboratoire - Bilan sanguin\nHemoglobine 13 g/dL"),
            "labo.pdf",
            "application",
            "pdf",
        ),
        "",
        Label.BIOLOGIE,
    ),
    (
        "depistage-png-subject",
        Attachment(make_png(), "photo.png", "image", "png"),
        "Carnet de vaccination",
        Label.DEPISTAG,
    ),
    (
        "certificat-filename",
        Attachment(make_pdf(None), "certificat_sport.pdf", "application", "pdf"),
        "",
        Label.CERT_MED,
    ),
    (
        "autres-scan-no-text",
        Attachment(make_pdf(None), "scan.pdf", "application", "pdf"),
        "Bonjour",
        Label.AUTR_DOC,
    ),
]


@pytest.mark.parametrize(
    ("attachment", "subject", "label"),
    [case[1:] for case in _LABEL_CASES],
    ids=[case[0] for case in _LABEL_CASES],
)
def test_every_label_reached(attachment: Attachment, subject: str, label: Label) -> None:
    [doc] = analyse(make_message([attachment], subject=subject).as_bytes())
    assert doc.label is label, doc.classification_reason
    assert doc.refusal is None


def test_every_label_covered_by_cases() -> None:
    assert {case[3] for case in _LABEL_CASES} == set(Label)


def test_scanned_pdf_without_hint_needs_review() -> None:
    [doc] = analyse(
        make_message(
            [Attachment(make_pdf(None), "scan.pdf", "application", "pdf")], subject="Bonjour"
        ).as_bytes()
    )
    assert doc.label is Label.AUTR_DOC and doc.needs_review and doc.confidence < 0.5


def test_octet_stream_is_sniffed() -> None:
    att = Attachment(make_pdf("Ordonnance"), "fichier", "application", "octet-stream")
    [doc] = analyse(make_message([att]).as_bytes())
    assert doc.mime_type == "application/pdf" and doc.label is Label.ORD_SOIN


def test_nested_message_attachments_are_found() -> None:
    inner = make_message(
        [Attachment(make_pdf("Certificat medical"), "c.pdf", "application", "pdf")]
    )
    outer = EmailMessage()
    outer["Subject"] = "TR: certificat"
    outer.set_content("voir pièce jointe")
    outer.add_attachment(inner)
    [doc] = analyse(outer.as_bytes())
    assert doc.label is Label.CERT_MED and doc.part_path == "2.2"


def test_message_limit_reported_with_partial_documents() -> None:
    from attachments import Limits

    pdf = make_pdf("Ordonnance")
    msg = make_message([Attachment(pdf, f"{i}.pdf", "application", "pdf") for i in range(3)])
    analysis = analyse_message(msg.as_bytes(), Limits(max_total_decoded=len(pdf) + 10))
    assert analysis.refusal is not None and analysis.refusal.reason is Reason.DECODED_TOO_LARGE
    assert len(analysis.documents) == 1


def test_body_only_message_has_no_documents() -> None:
    assert analyse(make_message([]).as_bytes()) == []
