"""CDA R2 header reader (HL7 CDA R2, French CI-SIS profile; domain README section 5).

Only the header is read: patient (recordTarget/patientRole/id with an INS OID), first author
(assignedAuthor/id with root 1.2.250.1.71.4.2.1 and extension "8"+RPPS), document code (LOINC),
effectiveTime, title, confidentialityCode, setId/versionNumber. The body is never interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from attachments.limits import Limits, Reason, Refusal
from attachments.model import (
    INS_OIDS,
    OID_IDNAT_PS,
    Author,
    Code,
    PatientId,
    parse_hl7_time,
    rpps_from_national_id,
)
from attachments.safexml import attr, child, children, parse_xml, text_of

__all__ = ["CdaHeader", "is_cda", "parse_cda"]

V3 = "{urn:hl7-org:v3}"

try:
    # French documents without a UTC offset are in metropolitan local time (our choice).
    _LOCAL: tzinfo = ZoneInfo("Europe/Paris")
except Exception:  # noqa: BLE001 - no tz database on this host
    from datetime import timezone

    _LOCAL = timezone.utc


@dataclass(frozen=True, slots=True)
class CdaHeader:
    """The CDA header facts the dossier bridge uses."""

    code: Code | None = None
    """Document type (code@code, @codeSystem, @displayName); LOINC is 2.16.840.1.113883.6.1."""
    title: str | None = None
    effective_time: datetime | None = None
    confidentiality: str | None = None
    """confidentialityCode@code: N, R or V."""
    patient_ins: PatientId | None = None
    """The recordTarget id whose root is an INS OID."""
    patient_ids: tuple[PatientId, ...] = ()
    """All recordTarget/patientRole ids."""
    author: Author | None = None
    author_time: datetime | None = None
    set_id: str | None = None
    """setId as "root" or "root^extension"."""
    version: int | None = None
    document_id: str | None = None
    """id as "root" or "root^extension"."""
    language: str | None = None


def is_cda(data: bytes) -> bool:
    """Cheap sniff: XML whose first 4 KiB name a ClinicalDocument and the HL7 v3 namespace."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"ClinicalDocument" in head and b"urn:hl7-org:v3" in head


def _ii(node: Element | None) -> str | None:
    root = attr(node, "root")
    if not root:
        return None
    ext = attr(node, "extension")
    return f"{root}^{ext}" if ext else root


def _author(doc: Element) -> tuple[Author | None, datetime | None]:
    author = child(doc, f"{V3}author")
    assigned = child(author, f"{V3}assignedAuthor")
    if assigned is None:
        return None, None
    national: str | None = None
    for ident in children(assigned, f"{V3}id"):
        if attr(ident, "root") == OID_IDNAT_PS:
            national = attr(ident, "extension")
            break
    name = child(child(assigned, f"{V3}assignedPerson"), f"{V3}name")
    family = text_of(child(name, f"{V3}family")) or None
    given = text_of(child(name, f"{V3}given")) or None
    org = child(assigned, f"{V3}representedOrganization")
    org_id = _ii(child(org, f"{V3}id"))
    code = child(assigned, f"{V3}code")
    specialty = None
    if attr(code, "code"):
        specialty = Code(
            code=attr(code, "code") or "",
            system=attr(code, "codeSystem"),
            display=attr(code, "displayName"),
        )
    return (
        Author(
            rpps=rpps_from_national_id(national),
            national_id=national,
            family_name=family,
            given_name=given,
            institution=text_of(child(org, f"{V3}name")) or None,
            institution_id=org_id,
            specialty=specialty,
        ),
        parse_hl7_time(attr(child(author, f"{V3}time"), "value"), _LOCAL),
    )


def _patient_ids(doc: Element) -> tuple[PatientId, ...]:
    ids: list[PatientId] = []
    for target in children(doc, f"{V3}recordTarget"):
        role = child(target, f"{V3}patientRole")
        for ident in children(role, f"{V3}id"):
            root, ext = attr(ident, "root"), attr(ident, "extension")
            if root and ext:
                ids.append(PatientId(value=ext, oid=root))
    return tuple(ids)


def _int(value: str | None) -> int | None:
    if value and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def parse_cda(data: bytes, limits: Limits = Limits()) -> CdaHeader | Refusal:  # noqa: B008
    """Parse the header of a CDA R2 document.

    Args:
        data: the CDA XML bytes.
        limits: XML size bound.

    Returns:
        A `CdaHeader`, or a `Refusal` (XML_* for unsafe or malformed XML, NOT_CDA when the root is
        not an HL7 v3 ClinicalDocument). Never raises for bad input.
    """
    root = parse_xml(data, limits)
    if isinstance(root, Refusal):
        return root
    if root.tag != f"{V3}ClinicalDocument":
        return Refusal(Reason.NOT_CDA, "root is not an HL7 v3 ClinicalDocument")
    code_el = child(root, f"{V3}code")
    code = None
    if attr(code_el, "code"):
        code = Code(
            code=attr(code_el, "code") or "",
            system=attr(code_el, "codeSystem"),
            display=attr(code_el, "displayName"),
        )
    ids = _patient_ids(root)
    author, author_time = _author(root)
    return CdaHeader(
        code=code,
        title=text_of(child(root, f"{V3}title")) or None,
        effective_time=parse_hl7_time(attr(child(root, f"{V3}effectiveTime"), "value"), _LOCAL),
        confidentiality=attr(child(root, f"{V3}confidentialityCode"), "code"),
        patient_ins=next((i for i in ids if i.oid in INS_OIDS), None),
        patient_ids=ids,
        author=author,
        author_time=author_time,
        set_id=_ii(child(root, f"{V3}setId")),
        version=_int(attr(child(root, f"{V3}versionNumber"), "value")),
        document_id=_ii(child(root, f"{V3}id")),
        language=attr(child(root, f"{V3}languageCode"), "code"),
    )
