"""Hostile attachments without XDM metadata: every archive gets the archive limits, and every
document must be what its type or name says before it can be filed."""

from __future__ import annotations

import pytest

from attachments.analyse import analyse_message
from attachments.limits import Reason
from tests.attachments.corpus import (
    Attachment,
    make_cda,
    make_message,
    make_pdf,
    make_png,
    make_zip,
    many_members_zip,
    nested_zip,
    random_bytes,
    truncated_zip,
    zip_bomb,
)

ZIP = ("application", "zip")
OCTETS = ("application", "octet-stream")

HOSTILE = [
    pytest.param(lambda: zip_bomb(), "documents.zip", ZIP, Reason.ARCHIVE_TOO_LARGE,
                 id="bomb-2MB-to-2GB"),
    # Headers declaring 1 KiB: only that much is inflated, then the CRC fails.
    pytest.param(lambda: zip_bomb(lie=True), "documents.zip", ZIP, Reason.CORRUPT_ARCHIVE,
                 id="bomb-lying-headers"),
    pytest.param(lambda: nested_zip(), "documents.zip", ZIP, Reason.NESTED_ARCHIVE,
                 id="nested-zip"),
    pytest.param(lambda: nested_zip(inner_name="annexe.bin"), "documents.zip", ZIP,
                 Reason.NESTED_ARCHIVE, id="nested-zip-innocent-name"),
    pytest.param(lambda: many_members_zip(), "documents.zip", ZIP, Reason.TOO_MANY_MEMBERS,
                 id="20000-members"),
    pytest.param(lambda: truncated_zip(), "documents.zip", ZIP, Reason.NOT_A_ZIP,
                 id="truncated-zip"),
    pytest.param(lambda: truncated_zip(), "documents.zip", OCTETS, Reason.NOT_A_ZIP,
                 id="truncated-zip-octet-stream"),
    pytest.param(lambda: random_bytes(), "scan.pdf", ("application", "pdf"),
                 Reason.TYPE_MISMATCH, id="random-bytes-scan.pdf"),
    pytest.param(lambda: random_bytes(), "scan.pdf", OCTETS, Reason.TYPE_MISMATCH,
                 id="random-bytes-scan.pdf-octet-stream"),
    pytest.param(lambda: b"%PDF-1.7\n" + random_bytes(), "scan.pdf", ("application", "pdf"),
                 Reason.TYPE_MISMATCH, id="pdf-header-on-noise"),
    pytest.param(lambda: random_bytes(), "photo.jpg", ("image", "jpeg"), Reason.TYPE_MISMATCH,
                 id="fake-jpeg"),
    pytest.param(lambda: random_bytes(), "radio.png", ("image", "png"), Reason.TYPE_MISMATCH,
                 id="fake-png"),
    pytest.param(lambda: b"<ClinicalDocument xmlns='urn:hl7-org:v3'><unclosed>",
                 "cr.xml", ("text", "xml"), Reason.TYPE_MISMATCH, id="cda-not-xml"),
]


@pytest.mark.parametrize(("build", "filename", "ctype", "reason"), HOSTILE)
def test_hostile_attachment_is_refused(build: object, filename: str, ctype: tuple[str, str],
                                       reason: Reason) -> None:
    data = build()  # type: ignore[operator]
    raw = bytes(make_message([Attachment(data, filename, *ctype)]))
    (doc,) = analyse_message(raw).documents
    assert doc.refusal is not None, "hostile attachment would be filed"
    assert doc.refusal.reason is reason


GENUINE = [
    pytest.param(make_pdf("Compte rendu de consultation"), "cr.pdf", ("application", "pdf"),
                 id="pdf"),
    pytest.param(make_png(), "radio.png", ("image", "png"), id="png"),
    pytest.param(b"\xff\xd8\xff\xe0" + bytes(64), "photo.jpg", ("image", "jpeg"), id="jpeg"),
    pytest.param(make_cda(), "cr.xml", ("text", "xml"), id="cda"),
    pytest.param(make_zip([("ordonnance.pdf", make_pdf("Ordonnance"))]), "docs.zip", ZIP,
                 id="plain-zip"),
    pytest.param(b"Bonjour", "note.txt", ("text", "plain"), id="text"),
]


@pytest.mark.parametrize(("data", "filename", "ctype"), GENUINE)
def test_genuine_attachment_is_kept(data: bytes, filename: str, ctype: tuple[str, str]) -> None:
    raw = bytes(make_message([Attachment(data, filename, *ctype)]))
    (doc,) = analyse_message(raw).documents
    assert doc.refusal is None
