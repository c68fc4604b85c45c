"""Documents as FHIR R4 resources for IHE MHD (pure: no I/O).

The models are ``fhir.resources.R4B`` (FHIR 4.3), wire-compatible with R4 for the resources used
here (DocumentReference, Bundle, Binary, List, OperationOutcome, CapabilityStatement).

Codes (domain README section 11, document-types.csv, class-codes.csv, labels.csv):

* ``type``: the document type, LOINC (``http://loinc.org``) or TRE_A05
  (``urn:oid:1.2.250.1.213.1.1.4.12``); a document classified from its content only (a PDF with no
  metadata) has a ``type`` with text and no coding;
* ``category``: the class code (JDV_J57, ``urn:oid:1.2.250.1.213.1.1.5.6``) and, as a second
  category, the patient-facing label (``LABEL_SYSTEM``, our choice). A document without a class
  code gets the class of its label (``LABEL_CLASS``, our choice);
* ``securityLabel``: the HL7 confidentiality (N/R/V, N when unknown) and ``MASQUE_PS`` /
  ``INVISIBLE_PATIENT`` of TRE_A07 when they apply.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.operationoutcome import OperationOutcome

from attachments.codes import CLASS_CODES, DOCUMENT_TYPES, LABEL_DISPLAY
from attachments.labels import Label
from dossier_bridge.fhir.profile_resources import CREATABLE, RESOURCE_RUBRICS
from dossier_bridge.store import DocumentInfo

__all__ = [
    "INS_SYSTEMS", "LOINC", "TRE_A05", "CLASS_SYSTEM", "LABEL_SYSTEM", "VISIBILITY_SYSTEM",
    "CONFIDENTIALITY_SYSTEM", "RPPS_SYSTEM", "FHIR_JSON", "LABEL_CLASS", "outcome",
    "document_reference", "searchset", "capability_statement", "type_system", "split_token",
    "class_code_of", "resource_id", "References", "PROFILE_SEARCH",
]

FHIR_JSON = "application/fhir+json"
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
INS_SYSTEMS = (INS_NIR, "urn:oid:1.2.250.1.213.1.4.10")
"""INS-NIR and the test identities' INS-NIR (domain README section 1)."""
LOINC = "http://loinc.org"
TRE_A05 = "urn:oid:1.2.250.1.213.1.1.4.12"
CLASS_SYSTEM = "urn:oid:1.2.250.1.213.1.1.5.6"
VISIBILITY_SYSTEM = "urn:oid:1.2.250.1.213.1.1.4.13"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
LABEL_SYSTEM = "urn:mssante:documents:label"
MHD_IG = "https://profiles.ihe.net/ITI/MHD/ImplementationGuide/ihe.iti.mhd"

LABEL_CLASS: dict[Label, str] = {
    Label.RADIO_SC: "31", Label.SYNTHESE: "11", Label.ORD_SOIN: "42", Label.CPT_REND: "10",
    Label.BIOLOGIE: "10", Label.DEPISTAG: "10", Label.CERT_MED: "52", Label.AUTR_DOC: "10",
}
"""Class code of a document that has none, by label (our choice)."""

_SYSTEMS = {"LOINC": LOINC, "TRE_A05": TRE_A05}
_CONFIDENTIALITY = {"N": "normal", "R": "restricted", "V": "very restricted"}


def type_system(code: str) -> str:
    """The FHIR system of a known type code (LOINC unless document-types.csv says TRE_A05)."""
    row = DOCUMENT_TYPES.get(code)
    return _SYSTEMS.get(row[0], LOINC) if row else LOINC


def split_token(value: str) -> tuple[str | None, str]:
    """A FHIR token search value ``system|code`` (or ``code``) as (system, code)."""
    system, bar, code = value.partition("|")
    return (system or None, code) if bar else (None, value)


def outcome(code: str, text: str, *, severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome (JSON) with one issue; ``text`` is French, shown to users."""
    model = OperationOutcome.model_validate({"issue": [
        {"severity": severity, "code": code, "diagnostics": text}]})
    return _json(model)


def _json(model: Any) -> dict[str, Any]:
    data = model.model_dump(mode="json", exclude_none=True)
    assert isinstance(data, dict)  # noqa: S101 - pydantic always dumps a model to a dict
    return data


def class_code_of(info: DocumentInfo) -> str:
    """The class code of a document (its metadata, its type, or its label's default)."""
    meta = info.meta.get("class_code")
    if isinstance(meta, dict) and meta.get("code") in CLASS_CODES:
        return str(meta["code"])
    row = DOCUMENT_TYPES.get(info.type_code or "")
    if row:
        return row[2]
    return "90" if info.added_by_patient else LABEL_CLASS[info.label]


def _type(info: DocumentInfo) -> dict[str, Any]:
    code = info.type_code
    if code is None:
        return {"text": LABEL_DISPLAY[info.label.value]}
    display = DOCUMENT_TYPES[code][1] if code in DOCUMENT_TYPES else None
    coding = {"system": type_system(code), "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _security(info: DocumentInfo) -> list[dict[str, Any]]:
    raw = info.meta.get("confidentiality") or []
    codes = {str(c).upper() for c in raw} if isinstance(raw, list) else set()
    level = next((c for c in ("V", "R", "N") if c in codes), "N")
    labels = [{"coding": [{"system": CONFIDENTIALITY_SYSTEM, "code": level,
                           "display": _CONFIDENTIALITY[level]}]}]
    if info.masked:
        labels.append({"coding": [{"system": VISIBILITY_SYSTEM, "code": "MASQUE_PS"}]})
    if info.hidden_from_patient:
        labels.append({"coding": [{"system": VISIBILITY_SYSTEM, "code": "INVISIBLE_PATIENT"}]})
    return labels


def _author(info: DocumentInfo) -> list[dict[str, Any]]:
    author = info.author
    ref: dict[str, Any] = {}
    if author.get("rpps"):
        ref["identifier"] = {"system": RPPS_SYSTEM, "value": f"8{author['rpps']}"}
    name = author.get("name") or author.get("institution")
    if name:
        ref["display"] = str(name)
    if info.added_by_patient:
        ref = {"display": "Patient"}
    return [ref] if ref else []


def _master_identifier(info: DocumentInfo, base: str) -> dict[str, Any]:
    uid = info.meta.get("unique_id")
    if isinstance(uid, str) and uid:
        value = uid if ":" in uid else f"urn:oid:{uid}"
    else:
        name = f"{base}/{info.patient_account_id}/{info.id}"
        value = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
    return {"system": "urn:ietf:rfc:3986", "value": value}


def resource_id(info: DocumentInfo) -> str:
    """The logical id of a document: ``<patient account>-<document>`` (both checked on read)."""
    return f"{info.patient_account_id}-{info.id}"


def document_reference(info: DocumentInfo, ins: tuple[str, str], base: str) -> DocumentReference:
    """The DocumentReference of ``info`` (``ins`` = (system, value); ``base`` ends without /)."""
    return DocumentReference.model_validate(_reference_data(info, ins, base))


class References:
    """DocumentReference JSON per document version, validated once by ``fhir.resources``.

    Validating and dumping a DocumentReference with ``fhir.resources`` costs about 2 ms: a
    search returning 1,000 documents would spend seconds there. The JSON of a document only
    changes with its facts (label, flags, metadata), so it is validated once and kept (bounded
    LRU); the dict that passed validation is what is sent (no second dump).
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._cache: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()

    def json(self, info: DocumentInfo, ins: tuple[str, str], base: str) -> dict[str, Any]:
        """The DocumentReference of ``info`` as JSON (do not mutate the result)."""
        key = (info.patient_account_id, info.id, info.label, info.masked,
               info.hidden_from_patient, info.added_by_patient, info.filed_at, info.size,
               info.mime_type, json.dumps(info.meta, sort_keys=True, default=str), ins, base)
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
            return data
        data = _reference_data(info, ins, base)
        DocumentReference.model_validate(data)
        self._cache[key] = data
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return data


def _reference_data(info: DocumentInfo, ins: tuple[str, str], base: str) -> dict[str, Any]:
    cls = class_code_of(info)
    rid = resource_id(info)
    data: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": rid,
        "masterIdentifier": _master_identifier(info, base),
        "status": "current",
        "type": _type(info),
        "category": [
            {"coding": [{"system": CLASS_SYSTEM, "code": cls, "display": CLASS_CODES[cls]}]},
            {"coding": [{"system": LABEL_SYSTEM, "code": info.label.value,
                         "display": info.label.display_fr}]}],
        "subject": {"identifier": {"system": ins[0], "value": ins[1]}},
        "date": info.filed_at.astimezone(UTC).isoformat(),
        "author": _author(info),
        "description": info.title,
        "securityLabel": _security(info),
        "content": [{"attachment": {
            "contentType": info.mime_type or "application/octet-stream",
            "size": info.size, "title": info.title, "url": f"{base}/Binary/{rid}",
            "creation": info.date.astimezone(UTC).isoformat()}}],
    }
    if not data["author"]:
        del data["author"]
    return data


def searchset(refs: Sequence[dict[str, Any]], base: str, self_url: str,
              issue: dict[str, Any] | None = None) -> dict[str, Any]:
    """A searchset Bundle (ITI-67 response) of validated resources' JSON (`References`, the
    profile's resources), with an optional outcome entry. The envelope is validated here, the
    resources were."""
    envelope = _json(Bundle.model_validate({
        "id": str(uuid.uuid4()), "type": "searchset", "total": len(refs),
        "timestamp": datetime.now(UTC).isoformat(),
        "link": [{"relation": "self", "url": self_url}]}))
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
         "search": {"mode": "match"}} for r in refs]
    if issue is not None:
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": issue,
                        "search": {"mode": "outcome"}})
    if entries:
        envelope["entry"] = entries
    return envelope


def capability_statement(base: str) -> dict[str, Any]:
    """The server's CapabilityStatement (``GET /fhir/metadata``)."""
    search = [{"name": n, "type": t} for n, t in (
        ("patient.identifier", "token"), ("status", "token"), ("type", "token"),
        ("category", "token"), ("date", "date"))]
    model = CapabilityStatement.model_validate({
        "status": "active", "date": datetime.now(UTC).date().isoformat(), "kind": "instance",
        "fhirVersion": "4.0.1", "format": [FHIR_JSON, "json"],
        "implementation": {"description": "MSSanté - Documents (IHE MHD) et profil médical",
                           "url": base},
        "implementationGuide": [MHD_IG],
        "rest": [{
            "mode": "server",
            "security": {"description": "HTTP Basic (identifiants de la messagerie, HTTPS) "
                                        "ou jeton Bearer"},
            "interaction": [{"code": "transaction"}],
            "resource": [
                {"type": "DocumentReference",
                 "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": search},
                {"type": "Binary", "interaction": [{"code": "read"}]},
                *_profile_resources()]}]})
    return _json(model)


PROFILE_SEARCH = (("patient.identifier", "token"), ("subject.identifier", "token"),
                  ("patient", "reference"), ("subject", "reference"), ("code", "token"))
"""Search parameters of the medical profile's resources (`dossier_bridge.fhir.profile_app`)."""


def _profile_resources() -> list[dict[str, Any]]:
    """The medical profile's resource types: read and search, create except Consent."""
    return [{"type": rtype,
             "interaction": [{"code": "read"}, {"code": "search-type"},
                             *([{"code": "create"}] if rtype in CREATABLE else [])],
             "searchParam": [{"name": n, "type": t} for n, t in PROFILE_SEARCH]}
            for rtype in RESOURCE_RUBRICS]
