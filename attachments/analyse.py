"""One entry point for the dossier bridge: a raw message in, classified documents out.

Theory of operation: `extract` walks the message; each attachment is sniffed (content first, then
the declared type):

- an IHE XDM zip yields its documents (never the zip itself); CDA documents inside are also read for
  their header, which fills what the XDM metadata lacks; an INS that differs between the two refuses
  the document (INS_MISMATCH). A refused archive yields one document for the zip, carrying the
  refusal;
- a standalone CDA R2 document is classified from its header (source "cda");
- anything else (PDF, image, other zip...) is classified from its content (source "content"): PDF
  text, filename and the message subject.

Before anything is filed it must be what it claims to be: every zip (XDM or not, by content,
declared type or ``.zip`` name) passes the archive limits of `check_archive` (bombs, nested
archives, member count, truncation); a document declared or named PDF must open with pypdf,
JPEG/PNG must carry their magic number, XML (CDA included) must parse. Otherwise the document
carries a refusal (TYPE_MISMATCH or the archive reason) and is not filed.

The PDF rendering that usually travels next to an `IHE_XDM.ZIP` is yielded as its own document
(source "content") unless it is byte-identical to a document of the archive, in which case it is
dropped: matching a rendering to its CDA is not reliable, so near-duplicates are left to the bridge.

Documents carrying a `refusal` must not be filed; their content is kept for quarantine.
"""

from __future__ import annotations

import enum
import hashlib
import posixpath
from dataclasses import dataclass, field, replace
from datetime import datetime

from attachments.cda import CdaHeader, is_cda, parse_cda
from attachments.labels import Classification, Label, classify
from attachments.limits import Limits, Reason, Refusal
from attachments.mime import MessageFacts, Part, extract, sanitise_filename
from attachments.model import Author, Code, PatientId
from attachments.pdftext import is_pdf, pdf_opens, pdf_text
from attachments.safexml import parse_xml
from attachments.xdm import XdmDocument, check_archive, looks_like_xdm, read_xdm

__all__ = ["Analysis", "Document", "DocumentSource", "analyse", "analyse_attachment",
           "analyse_message"]

_ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
_XML_TYPES = {"text/xml", "application/xml", "application/hl7-v3+xml"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


class DocumentSource(enum.Enum):
    """Where a document's metadata comes from."""

    XDM = "xdm"
    CDA = "cda"
    CONTENT = "content"


@dataclass(frozen=True, slots=True)
class Document:
    """One document to file in the patient's record."""

    label: Label
    confidence: float
    needs_review: bool
    classification_reason: str
    source: DocumentSource
    filename: str
    mime_type: str
    content: bytes = field(repr=False)
    sha256: str
    part_path: str
    """MIME section of the attachment, plus "/<member>" for a document inside an XDM zip."""
    type_code: Code | None = None
    class_code: Code | None = None
    format_code: Code | None = None
    patient_ins: PatientId | None = None
    author: Author | None = None
    creation_time: datetime | None = None
    """XDM creationTime, else CDA effectiveTime."""
    effective_time: datetime | None = None
    """CDA effectiveTime when a CDA header was read."""
    service_start: datetime | None = None
    service_stop: datetime | None = None
    title: str | None = None
    confidentiality: tuple[str, ...] = ()
    """XDM confidentialityCode values and/or the CDA confidentialityCode (N/R/V, MASQUE_PS...)."""
    unique_id: str | None = None
    set_id: str | None = None
    version: int | None = None
    refusal: Refusal | None = None

    @property
    def size(self) -> int:
        """Content size in bytes."""
        return len(self.content)


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything `analyse_message` found: message facts, documents, and a message-level refusal."""

    facts: MessageFacts
    documents: tuple[Document, ...]
    refusal: Refusal | None = None
    """Set when the MIME walk stopped early (documents then hold what was read before)."""


def _sniff_type(content: bytes, declared: str) -> str:
    if is_pdf(content):
        return "application/pdf"
    if content.startswith(_PNG_MAGIC):
        return "image/png"
    if content.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if content.startswith(b"PK\x03\x04"):
        return "application/zip"
    if is_cda(content):
        return "text/xml"
    return declared


def _type_refusal(content: bytes, mime_type: str, filename: str, limits: Limits
                  ) -> Refusal | None:
    """Refuse a document that is not what its type or file name says (see module docstring)."""
    name = filename.casefold()
    if mime_type == "application/pdf" or name.endswith(".pdf"):
        ok = pdf_opens(content, limits)
        what = "a PDF"
    elif mime_type == "image/png" or name.endswith(".png"):
        ok, what = content.startswith(_PNG_MAGIC), "a PNG image"
    elif mime_type == "image/jpeg" or name.endswith((".jpg", ".jpeg")):
        ok, what = content.startswith(_JPEG_MAGIC), "a JPEG image"
    elif mime_type in _XML_TYPES or name.endswith(".xml"):
        parsed = parse_xml(content, limits)
        if isinstance(parsed, Refusal):
            return parsed if parsed.reason is not Reason.XML_MALFORMED else Refusal(
                Reason.TYPE_MISMATCH, "declared XML does not parse")
        return None
    else:
        return None
    return None if ok else Refusal(Reason.TYPE_MISMATCH, f"content is not {what}")


def _claims_archive(mime_type: str, filename: str) -> bool:
    return mime_type in _ZIP_TYPES or filename.casefold().endswith(".zip")


def _classified(c: Classification, source: DocumentSource, part: Part, mime_type: str) -> Document:
    """A document for a whole attachment, without header metadata."""
    return Document(
        label=c.label,
        confidence=c.confidence,
        needs_review=c.needs_review,
        classification_reason=c.reason,
        source=source,
        filename=part.filename,
        mime_type=mime_type,
        content=part.content,
        sha256=part.sha256,
        part_path=part.path,
    )


def _refused_part(part: Part, mime_type: str, refusal: Refusal) -> Document:
    return Document(
        label=Label.AUTR_DOC,
        confidence=0.0,
        needs_review=True,
        classification_reason="refused",
        source=DocumentSource.CONTENT,
        filename=part.filename,
        mime_type=mime_type,
        content=part.content,
        sha256=part.sha256,
        part_path=part.path,
        refusal=refusal,
    )


def _xdm_document(doc: XdmDocument, part: Part, subject: str, limits: Limits) -> Document:
    entry = doc.entry
    header: CdaHeader | None = None
    if doc.content and is_cda(doc.content):
        parsed = parse_cda(doc.content, limits)
        header = parsed if isinstance(parsed, CdaHeader) else None
    refusal = doc.refusal
    member = doc.member or entry.uri or entry.entry_id
    mime_type = entry.mime_type or _sniff_type(doc.content, "application/octet-stream")
    if refusal is None and doc.content:
        refusal = _type_refusal(doc.content, mime_type, posixpath.basename(member or ""), limits)
    ins = entry.patient_id if entry.patient_id and entry.patient_id.is_ins else None
    if header is not None and header.patient_ins is not None:
        if ins is not None and ins.value != header.patient_ins.value and refusal is None:
            refusal = Refusal(Reason.INS_MISMATCH, "INS differs between XDM metadata and CDA")
        ins = ins or header.patient_ins
    type_code = entry.type_code or (header.code if header else None)
    title = entry.title or (header.title if header else None)
    filename, _ = sanitise_filename(posixpath.basename(member or ""), entry.mime_type or "", "x")
    confidentiality = tuple(c.code for c in entry.confidentiality)
    if not confidentiality and header is not None and header.confidentiality:
        confidentiality = (header.confidentiality,)
    result = classify(
        type_code=type_code.code if type_code else None,
        class_code=entry.class_code.code if entry.class_code else None,
        text=title or "",
        filename=filename,
        subject=subject,
    )
    return Document(
        label=result.label,
        confidence=result.confidence,
        needs_review=result.needs_review,
        classification_reason=result.reason,
        source=DocumentSource.XDM,
        filename=filename,
        mime_type=mime_type,
        content=doc.content,
        sha256=doc.sha256,
        part_path=f"{part.path}/{member}",
        type_code=type_code,
        class_code=entry.class_code,
        format_code=entry.format_code,
        patient_ins=ins,
        author=entry.authors[0] if entry.authors else (header.author if header else None),
        creation_time=entry.creation_time or (header.effective_time if header else None),
        effective_time=header.effective_time if header else None,
        service_start=entry.service_start,
        service_stop=entry.service_stop,
        title=title,
        confidentiality=confidentiality,
        unique_id=entry.unique_id,
        set_id=header.set_id if header else None,
        version=header.version if header else None,
        refusal=refusal,
    )


def _plain_document(part: Part, mime_type: str, subject: str, limits: Limits) -> Document:
    refusal = _type_refusal(part.content, mime_type, part.filename, limits)
    if refusal is not None:
        return _refused_part(part, mime_type, refusal)
    if mime_type == "text/xml" and is_cda(part.content):
        header = parse_cda(part.content, limits)
        if isinstance(header, Refusal):
            return _refused_part(part, mime_type, header)
        result = classify(
            type_code=header.code.code if header.code else None,
            text=header.title or "",
            filename=part.filename,
            subject=subject,
        )
        return replace(
            _classified(result, DocumentSource.CDA, part, mime_type),
            type_code=header.code,
            patient_ins=header.patient_ins,
            author=header.author,
            creation_time=header.effective_time,
            effective_time=header.effective_time,
            title=header.title,
            confidentiality=(header.confidentiality,) if header.confidentiality else (),
            unique_id=header.document_id,
            set_id=header.set_id,
            version=header.version,
        )
    text = pdf_text(part.content, limits) if mime_type == "application/pdf" else ""
    result = classify(text=text, filename=part.filename, subject=subject)
    return _classified(result, DocumentSource.CONTENT, part, mime_type)


def _analyse_part(part: Part, subject: str, limits: Limits
                  ) -> tuple[list[Document], list[Document]]:
    """Documents of one attachment: (documents read from an XDM archive, other documents)."""
    mime_type = _sniff_type(part.content, part.content_type)
    if _claims_archive(mime_type, part.filename):
        archive_refusal = check_archive(part.content, limits)
        if archive_refusal is not None:
            return [], [_refused_part(part, mime_type, archive_refusal)]
    if mime_type in _ZIP_TYPES and looks_like_xdm(part.content):
        result = read_xdm(part.content, limits)
        if result.refusal is not None:
            return [], [_refused_part(part, mime_type, result.refusal)]
        return [_xdm_document(d, part, subject, limits) for d in result.documents], []
    if mime_type in _ZIP_TYPES and part.filename.casefold().startswith("ihe_xdm"):
        # Named like an XDM archive but unreadable as one: refuse rather than file opaque bytes.
        result = read_xdm(part.content, limits)
        refusal = result.refusal or Refusal(Reason.NOT_XDM, "archive is not IHE XDM")
        return [], [_refused_part(part, mime_type, refusal)]
    return [], [_plain_document(part, mime_type, subject, limits)]


def analyse_attachment(content: bytes, content_type: str, filename: str, *, subject: str = "",
                       path: str = "1", limits: Limits = Limits()  # noqa: B008
                       ) -> list[Document]:
    """The documents of one attachment received outside a message (IHE MHD ITI-65 Binary).

    The same checks and classification as an attachment of a message: archive limits, XDM,
    CDA header, type sniffing and refusals. The filename is sanitised like a MIME filename.
    """
    name, declared = sanitise_filename(filename, content_type.lower(), path)
    part = Part(path=path, filename=name, content_type=content_type.lower(), content=content,
                sha256=hashlib.sha256(content).hexdigest(), declared_filename=declared)
    xdm, other = _analyse_part(part, subject, limits)
    return xdm + other


def analyse_message(raw_message: bytes, limits: Limits = Limits()) -> Analysis:  # noqa: B008
    """Extract and classify every document of a message.

    Args:
        raw_message: the message as received.
        limits: bounds for the MIME walk, archives, XML and PDF.

    Returns:
        An `Analysis`. Never raises for bad input: refusals are carried by the analysis (message
        level) or by each document.
    """
    extraction = extract(raw_message, limits)
    subject = extraction.facts.subject
    xdm_docs: list[Document] = []
    other_docs: list[Document] = []
    for part in extraction.parts:
        xdm, other = _analyse_part(part, subject, limits)
        xdm_docs.extend(xdm)
        other_docs.extend(other)
    in_archive = {d.sha256 for d in xdm_docs if d.content}
    documents = xdm_docs + [d for d in other_docs if d.sha256 not in in_archive]
    # Keep message order: sort by the MIME section of the attachment (stable within an archive).
    order = {part.path: index for index, part in enumerate(extraction.parts)}
    documents.sort(key=lambda d: order.get(d.part_path.split("/", 1)[0], len(order)))
    return Analysis(facts=extraction.facts, documents=tuple(documents), refusal=extraction.refusal)


def analyse(raw_message: bytes, limits: Limits = Limits()) -> list[Document]:  # noqa: B008
    """Documents of a message (`analyse_message` also returns header facts and the refusal)."""
    return list(analyse_message(raw_message, limits).documents)
