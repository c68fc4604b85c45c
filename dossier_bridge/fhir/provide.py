"""IHE MHD ITI-65 Provide Document Bundle: a transaction Bundle in, documents filed.

Theory of operation: filing by ITI-65 and by mail are one path. Each Binary goes through
`attachments.analyse_attachment`, the checks a mail attachment passes (type sniffing, PDF/image
magic, XML safety, archive limits, CDA header) and the same classification (`classify` with the
DocumentReference's type and class codes first); documents are filed with
`DocumentStore.file`, whose keyed content hash and uniqueId (``masterIdentifier``) make the same
document filed twice (by mail, by ITI-65 or both) stored once. They are visible to the patient at
once, unless flagged ``INVISIBLE_PATIENT``.

Everything is checked before anything is filed (all or nothing): the Bundle (``fhir.resources``),
its shape (a transaction with one List, DocumentReferences and the Binaries they point at), one
INS for the whole submission (the DocumentReferences' and the List's subject, and the INS in a
CDA header), strict base64 and the size limit (both checked on the JSON text before decoding),
and every document's analysis. A problem is a `ProvideError` (status, FHIR issue code, French
text) that the app turns into an OperationOutcome.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.list import List as FhirList
from pydantic import ValidationError as PydanticError

from attachments import Document, DocumentSource, Limits, analyse_attachment, classify
from dossier_bridge.access import ViewerRole
from dossier_bridge.fhir.mapping import CLASS_SYSTEM, INS_SYSTEMS, LOINC, TRE_A05
from dossier_bridge.store import DocumentStore, FileResult, NewDocument
from mailserver.directory.service import AccountInfo

__all__ = ["ProvideError", "Provider", "Provided", "MAX_DOCUMENT_BYTES"]

MAX_DOCUMENT_BYTES = 25 * 1000 * 1000
"""One document's decoded size (the 25 MB limit of mail to a patient)."""
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_VISIBILITY = {"MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}
PatientFinder = Callable[[str], Awaitable[AccountInfo | None]]


class ProvideError(Exception):
    """A refused submission: HTTP status, FHIR issue code, French text."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class Provided:
    """One filed document: its entries' fullUrls and the store's result."""

    full_url: str
    binary_url: str
    result: FileResult


@dataclass(frozen=True, slots=True)
class _Checked:
    full_url: str
    binary_url: str
    doc: NewDocument = field(repr=False)


def _precheck(data: Any, max_bytes: int) -> None:
    """Strict base64 and size of every Binary, on the JSON text (before any decoding)."""
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise ProvideError(400, "invalid", "Le corps doit être un Bundle FHIR.")
    for entry in data.get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "Binary":
            continue
        b64 = res.get("data")
        if not isinstance(b64, str) or not b64:
            raise ProvideError(422, "required", "Binary sans contenu.")
        compact = "".join(b64.split())
        if len(compact) // 4 * 3 > max_bytes:
            raise ProvideError(413, "too-costly", "Document trop volumineux.")
        if len(compact) % 4 or not _B64.fullmatch(compact):
            raise ProvideError(400, "invalid", "Contenu Binary : base64 invalide.")
        try:
            binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise ProvideError(400, "invalid", "Contenu Binary : base64 invalide.") from exc


def _ins_of(identifier: Any) -> str:
    if identifier is None or identifier.system not in INS_SYSTEMS or not identifier.value:
        raise ProvideError(422, "required", "Le sujet doit être identifié par son INS.")
    return str(identifier.value).strip().upper()


def _parts(bundle: Bundle) -> tuple[list[FhirList], list[tuple[str, DocumentReference]],
                                    dict[str, Binary]]:
    lists: list[FhirList] = []
    refs: list[tuple[str, DocumentReference]] = []
    binaries: dict[str, Binary] = {}
    for entry in bundle.entry or []:
        res, url = entry.resource, str(entry.fullUrl or "")
        if isinstance(res, FhirList):
            lists.append(res)
        elif isinstance(res, DocumentReference):
            refs.append((url, res))
        elif isinstance(res, Binary):
            binaries[url] = res
            if res.id:
                binaries[f"Binary/{res.id}"] = res
        else:
            raise ProvideError(422, "not-supported", "Ressource non prise en charge dans le lot.")
    if bundle.type != "transaction" or len(lists) != 1 or not refs:
        raise ProvideError(422, "structure", "Un Bundle transaction avec une List (lot de "
                                             "soumission) et des DocumentReference est attendu.")
    return lists, refs, binaries


def _codes(ref: DocumentReference) -> tuple[str | None, str | None]:
    type_code = next((c.code for c in (ref.type.coding or []) if c.system in (LOINC, TRE_A05)
                      and c.code), None) if ref.type else None
    class_code = next((c.code for cat in ref.category or [] for c in cat.coding or []
                       if c.system == CLASS_SYSTEM and c.code), None)
    return type_code, class_code


def _security(ref: DocumentReference) -> list[str]:
    return [str(c.code) for s in ref.securityLabel or [] for c in s.coding or [] if c.code]


def _analysed(content: bytes, ref: DocumentReference, limits: Limits) -> Document:
    att = ref.content[0].attachment
    docs = analyse_attachment(content, att.contentType or "application/octet-stream",
                              att.title or "document", subject=ref.description or "",
                              limits=limits)
    if len(docs) != 1 or docs[0].source is DocumentSource.XDM:
        raise ProvideError(422, "not-supported", "Une archive XDM n'est pas un document : "
                                                 "envoyez ses documents un par un.")
    if docs[0].refusal is not None:
        raise ProvideError(422, "invalid", f"Document refusé ({docs[0].refusal.reason.value}).")
    return docs[0]


def _check_ins(doc: Document, ins: str) -> None:
    """The same INS rules as mail (integration errors 904 and 905)."""
    if doc.patient_ins is None:
        return
    value = doc.patient_ins.value.strip().upper()
    if len(value) == 13 and ins.startswith(value):
        raise ProvideError(422, "invalid", "INS incomplet dans le document (clé absente).")
    if value != ins:
        raise ProvideError(422, "invalid", "L'INS du document ne correspond pas au patient.")


def _new_document(ref: DocumentReference, doc: Document, account: AccountInfo,
                  full_url: str) -> NewDocument:
    ref_type, ref_class = _codes(ref)
    type_code = ref_type or (doc.type_code.code if doc.type_code else None)
    class_code = ref_class or (doc.class_code.code if doc.class_code else None)
    title = ref.description or ref.content[0].attachment.title or doc.title or doc.filename
    c = classify(type_code=type_code, class_code=class_code, text=title,
                 filename=doc.filename)
    labels = _security(ref)
    conf = [code for code in labels if code not in _VISIBILITY] or list(doc.confidentiality)
    created = ref.content[0].attachment.creation or doc.creation_time or ref.date
    uid = ref.masterIdentifier.value if ref.masterIdentifier else None
    unique_id = (uid.removeprefix("urn:oid:") if uid else None) or doc.unique_id
    meta: dict[str, Any] = {
        "title": title, "origin": "mhd",
        "type_code": {"code": type_code, "system": "TRE_A05" if ref_type and ref.type and any(
            x.system == TRE_A05 for x in ref.type.coding or []) else "LOINC"}
        if type_code else None,
        "class_code": {"code": class_code, "system": CLASS_SYSTEM} if class_code else None,
        "author": {"rpps": account.rpps, "name": account.name, "profession": account.profession,
                   "address": account.address},
        "creation_time": created.isoformat() if isinstance(created, datetime) else None,
        "confidentiality": conf, "unique_id": unique_id,
        "classification": {"confidence": c.confidence, "reason": c.reason,
                           "source": doc.source.value},
        "source": {"channel": "mhd", "entry": full_url},
    }
    masked = "MASQUE_PS" in labels or "MASQUE_PS" in doc.confidentiality
    hidden = "INVISIBLE_PATIENT" in labels or "INVISIBLE_PATIENT" in doc.confidentiality
    return NewDocument(content=doc.content, sha256=doc.sha256, filename=doc.filename,
                       mime_type=doc.mime_type, label=c.label, needs_review=c.needs_review,
                       unique_id=unique_id, masked=masked, hidden_from_patient=hidden,
                       meta=meta)


class Provider:
    """Files ITI-65 submissions in the patient's record (see the module docstring)."""

    def __init__(self, documents: DocumentStore, find_patient: PatientFinder, *,
                 max_document_bytes: int = MAX_DOCUMENT_BYTES,
                 limits: Limits = Limits()) -> None:  # noqa: B008 - frozen default
        self.documents = documents
        self.find_patient = find_patient
        self.max_document_bytes = max_document_bytes
        self.limits = limits

    async def provide(self, account: AccountInfo, data: Any) -> tuple[int, list[Provided]]:
        """Check the whole submission, then file its documents; returns the patient's id.

        Raises:
            ProvideError: the submission is refused; nothing was filed.
        """
        _precheck(data, self.max_document_bytes)
        try:
            bundle = Bundle.model_validate(data)
        except PydanticError as exc:
            raise ProvideError(400, "structure", "Bundle FHIR invalide.") from exc
        lists, refs, binaries = _parts(bundle)
        ins = {_ins_of(r.subject.identifier if r.subject else None) for _u, r in refs}
        if lists[0].subject is not None:
            ins.add(_ins_of(lists[0].subject.identifier))
        if len(ins) != 1:
            raise ProvideError(422, "invalid", "Le lot concerne plusieurs INS.")
        patient_ins = ins.pop()
        patient = await self.find_patient(patient_ins)
        if patient is None or not patient.is_patient or patient.status != "open":
            raise ProvideError(422, "not-found", "Patient inconnu ou espace santé fermé.")
        viewer = await self.documents.consents.viewer(account, patient.id)
        if viewer.role is ViewerRole.OTHER:
            raise ProvideError(403, "forbidden", "Dépôt non autorisé.")
        checked = [self._check(url, ref, binaries, patient_ins, account) for url, ref in refs]
        actor = {"kind": "pro", "rpps": account.rpps, "name": account.name,
                 "profession": account.profession, "address": account.address,
                 "bal_type": account.bal_type, "channel": "mhd"}
        out = []
        for item in checked:
            result = await self.documents.file(patient.id, item.doc,
                                               actor_account_id=account.id, actor=actor)
            out.append(Provided(item.full_url, item.binary_url, result))
        return patient.id, out

    def _check(self, full_url: str, ref: DocumentReference, binaries: dict[str, Binary],
               ins: str, account: AccountInfo) -> _Checked:
        if ref.status != "current":
            raise ProvideError(422, "invalid", "Un document déposé a le statut « current ».")
        if not ref.content or ref.content[0].attachment is None:
            raise ProvideError(422, "required", "DocumentReference sans contenu.")
        att = ref.content[0].attachment
        binary = binaries.get(str(att.url or ""))
        if binary is None or not binary.data:
            raise ProvideError(422, "required", "Le Binary du document est absent du lot.")
        content = bytes(binary.data)
        if len(content) > self.max_document_bytes:
            raise ProvideError(413, "too-costly", "Document trop volumineux.")
        doc = _analysed(content, ref, self.limits)
        _check_ins(doc, ins)
        return _Checked(full_url, str(att.url), _new_document(ref, doc, account, full_url))
