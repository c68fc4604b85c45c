"""Reader for the ebRIM SubmitObjectsRequest in an XDM METADATA.XML (IHE ITI TF-3 4.2.3.2).

Theory of operation: each `rim:ExtrinsicObject` is a DocumentEntry. Its coded attributes are
`rim:Classification` elements told apart by `classificationScheme` (UUIDs fixed by ITI TF-3 4.2.5),
its identifiers are `rim:ExternalIdentifier` elements told apart by `identificationScheme`, and the
rest are `rim:Slot` elements (creationTime, hash, size, URI, ...). Unknown elements are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from xml.etree.ElementTree import Element

from attachments.limits import Limits, Refusal
from attachments.model import (
    Author,
    Code,
    PatientId,
    author_from_xcn,
    code_from_ce,
    institution_from_xon,
    parse_cx,
    parse_hl7_time,
)
from attachments.safexml import attr, child, children, parse_xml

__all__ = ["DocumentEntry", "SCHEME", "parse_metadata"]

RIM = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"

# ITI TF-3 4.2.5 (DocumentEntry classification and identification schemes).
SCHEME = {
    "class": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "type": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
    "format": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "confidentiality": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "author": "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d",
    "healthcare_facility_type": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    "practice_setting": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
    "patient_id": "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "unique_id": "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
}
DOCUMENT_ENTRY_TYPE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """The metadata of one document in an XDM submission set."""

    entry_id: str
    """The ExtrinsicObject's `id` (symbolic or urn:uuid)."""
    patient_id: PatientId | None = None
    source_patient_id: PatientId | None = None
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    confidentiality: tuple[Code, ...] = ()
    authors: tuple[Author, ...] = ()
    creation_time: datetime | None = None
    service_start: datetime | None = None
    service_stop: datetime | None = None
    title: str | None = None
    hash_sha1: str | None = None
    """Hex SHA-1 of the document as declared (lower case)."""
    size: int | None = None
    """Declared size in bytes; None when absent or not a number."""
    mime_type: str | None = None
    unique_id: str | None = None
    uri: str | None = None
    """The member file, relative to the METADATA.XML directory (XDM)."""
    language: str | None = None
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)
    """Other slots, by name."""


def _slots(node: Element) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for slot in children(node, f"{RIM}Slot"):
        name = attr(slot, "name")
        if not name:
            continue
        value_list = child(slot, f"{RIM}ValueList")
        values = tuple(
            v.text.strip() for v in children(value_list, f"{RIM}Value") if v.text and v.text.strip()
        )
        found[name] = found.get(name, ()) + values
    return found


def _localized(node: Element | None, tag: str) -> str | None:
    holder = child(node, f"{RIM}{tag}")
    loc = child(holder, f"{RIM}LocalizedString")
    return attr(loc, "value")


def _first(slots: dict[str, tuple[str, ...]], name: str) -> str | None:
    values = slots.get(name, ())
    return values[0] if values else None


def _code(cls: Element) -> Code | None:
    value = attr(cls, "nodeRepresentation")
    if not value:
        return None
    return Code(
        code=value,
        system=_first(_slots(cls), "codingScheme"),
        display=_localized(cls, "Name"),
    )


def _author(cls: Element) -> Author:
    slots = _slots(cls)
    person = author_from_xcn(_first(slots, "authorPerson"))
    inst_name, inst_id = institution_from_xon(_first(slots, "authorInstitution"))
    return Author(
        rpps=person.rpps,
        national_id=person.national_id,
        family_name=person.family_name,
        given_name=person.given_name,
        institution=inst_name,
        institution_id=inst_id,
        role=code_from_ce(_first(slots, "authorRole")),
        specialty=code_from_ce(_first(slots, "authorSpecialty")),
    )


def _int(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    return int(value)


def _entry(node: Element) -> DocumentEntry:
    slots = _slots(node)
    codes: dict[str, Code] = {}
    confidentiality: list[Code] = []
    authors: list[Author] = []
    for cls in children(node, f"{RIM}Classification"):
        scheme = attr(cls, "classificationScheme")
        if scheme == SCHEME["author"]:
            authors.append(_author(cls))
            continue
        code = _code(cls)
        if code is None:
            continue
        if scheme == SCHEME["confidentiality"]:
            confidentiality.append(code)
        for key in ("class", "type", "format"):
            if scheme == SCHEME[key] and key not in codes:
                codes[key] = code
    idents: dict[str, str] = {}
    for ext in children(node, f"{RIM}ExternalIdentifier"):
        scheme = attr(ext, "identificationScheme")
        value = attr(ext, "value")
        if scheme and value and scheme not in idents:
            idents[scheme] = value
    hash_value = _first(slots, "hash")
    return DocumentEntry(
        entry_id=attr(node, "id") or "",
        patient_id=parse_cx(idents.get(SCHEME["patient_id"])),
        source_patient_id=parse_cx(_first(slots, "sourcePatientId")),
        class_code=codes.get("class"),
        type_code=codes.get("type"),
        format_code=codes.get("format"),
        confidentiality=tuple(confidentiality),
        authors=tuple(authors),
        creation_time=parse_hl7_time(_first(slots, "creationTime")),
        service_start=parse_hl7_time(_first(slots, "serviceStartTime")),
        service_stop=parse_hl7_time(_first(slots, "serviceStopTime")),
        title=_localized(node, "Name"),
        hash_sha1=hash_value.lower() if hash_value else None,
        size=_int(_first(slots, "size")),
        mime_type=(attr(node, "mimeType") or "").lower() or None,
        unique_id=idents.get(SCHEME["unique_id"]),
        uri=_first(slots, "URI"),
        language=_first(slots, "languageCode"),
        extra={
            k: v
            for k, v in slots.items()
            if k not in {"creationTime", "serviceStartTime", "serviceStopTime", "hash", "size"}
        },
    )


def parse_metadata(data: bytes, limits: Limits) -> list[DocumentEntry] | Refusal:
    """Parse a METADATA.XML and return its DocumentEntries (in document order).

    Args:
        data: METADATA.XML bytes.
        limits: XML size bound.

    Returns:
        The entries (possibly empty), or a `Refusal` for unsafe or malformed XML.
    """
    root = parse_xml(data, limits)
    if isinstance(root, Refusal):
        return root
    entries: list[DocumentEntry] = []
    for node in root.iter(f"{RIM}ExtrinsicObject"):
        object_type = attr(node, "objectType")
        if object_type not in (None, DOCUMENT_ENTRY_TYPE):
            continue  # e.g. an On-Demand entry type: not a stored document
        entries.append(_entry(node))
    return entries
