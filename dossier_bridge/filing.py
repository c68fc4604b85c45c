"""The dossier bridge: a delivered professional→patient message in, documents filed, MDN out.

Theory of operation: delivery commits the message and, in the same transaction, a durable
``file_documents`` job (patient account, message row id). The worker runs :meth:`Filer.run`
(through :meth:`Filer.handle_job`, listed in the root's job table) after that commit, so a
filing failure never loses or delays the message; an exception here makes the worker retry with
back-off, and every step is idempotent:

1. a ``dossier_filings`` row per (patient, message) records the outcome; when it exists the
   message was handled and only a pending MDN is (re)sent;
2. the message is analysed (`attachments.analyse_message`, in a thread: PDFs and zips are CPU);
3. checks, first failure wins (integration error codes of domain README section 5):
   recipient not a patient, or a patient whose account is not open (pending, opposed, closed,
   suspended) → 902; XDM subject of another version than 1.0 → 900; sender is not a
   professional → 901; an INS problem in any document → nothing of the message is filed
   (904 mismatch between the package and the recipient or between XDM and CDA, 905 INS without
   its key, 903 ``X-MSS-INS: O`` announced but no INS found);
4. each document is filed (`DocumentStore.file`, deduplicated by keyed content hash and
   uniqueId); a document refused by the reader (hostile archive, hash mismatch...) is skipped and
   the receipt reports 906;
5. when the message asked for one (``Disposition-Notification-To``) and carried documents or
   MSSanté document headers, an integration MDN (RFC 8098) goes back: ``processed`` or
   ``processed/error`` with the code. The receipt sender (the server's one owner of system
   messages) builds and delivers it with a null envelope sender, and only to a professional
   address, never to a patient.

``X-MSS-CODECDA`` gives the type code of structured documents that carry none when it announces
exactly one code; announced codes not found are recorded (reason ``codecda_missing``).

The filer receives what it works with (the seams below are what it needs of each): the stored
messages, the patient's document store (with its record of handled messages), the directory,
the receipt sender and a clock. It issues no SQL itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from attachments import Analysis, Document, DocumentSource, Reason, analyse_message, classify
from attachments.codes import DOCUMENT_TYPES
from dossier_bridge.filings import FilingRecord
from dossier_bridge.store import DocumentStore, NewDocument
from mailserver import metrics
from mailserver.delivery import parse_header_facts
from mailserver.directory.service import AccountInfo, NationalEntry
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.identifiers import normalise_address
from mailserver.reports.mdn import IntegrationError, receipt_address
from mailserver.store.jobs import JobInfo

__all__ = ["Filer", "FilingOutcome", "DISPENSATION_TYPES", "PHARMACIST", "RawMessages",
           "PatientDirectory", "ReceiptSender"]

log = logging.getLogger(__name__)

PHARMACIST = "21"
DISPENSATION_CLASS = "43"
DISPENSATION_TYPES = frozenset(code for code, (_s, _d, cls, _l) in DOCUMENT_TYPES.items()
                               if cls == DISPENSATION_CLASS)
"""Type codes of dispensation documents (class 43 in document-types.csv)."""
_XDM_SUBJECT = re.compile(r"^\s*XDM/([^/\s]+)/", re.IGNORECASE)


class RawMessages(Protocol):
    """The stored messages (the mail store)."""

    async def read_raw(self, message_id: int) -> bytes: ...


class PatientDirectory(Protocol):
    """The accounts hosted here and the national directory (the server's directory)."""

    async def get(self, account_id: int) -> AccountInfo: ...

    async def lookup(self, address: str) -> AccountInfo | None: ...

    async def national_entry(self, address: str) -> NationalEntry | None: ...

    async def organisation_address(self, structure_id: str, profession: str) -> str | None: ...


class ReceiptSender(Protocol):
    """Builds and delivers the integration receipt (MDN, RFC 8098) of a handled message.

    Returns ``"sent"`` or ``"undeliverable"`` (e.g. the address is not a professional's).
    """

    async def integration_receipt(self, original: bytes, *, notify_to: str,
                                  final_recipient: str, error: IntegrationError | None,
                                  detail: str | None = None) -> str: ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FilingOutcome:
    """What happened to one message."""

    status: str
    """filed | partial | not_filed | no_documents."""
    reason: str | None
    error: IntegrationError | None
    documents: tuple[tuple[int, str, bool], ...]
    """(document id, filename, newly created)."""
    mdn: str
    """none | pending | sent | undeliverable."""


@dataclass(frozen=True, slots=True)
class _Sender:
    address: str
    account_id: int | None
    rpps: str | None
    name: str | None
    profession: str | None
    bal_type: str | None
    is_patient: bool

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "pro", "address": self.address, "rpps": self.rpps, "name": self.name,
                "profession": self.profession, "bal_type": self.bal_type}


def _code(c: Any) -> dict[str, Any] | None:
    return {"code": c.code, "system": c.system, "display": c.display} if c else None


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _ins_error(doc: Document, ins: str) -> IntegrationError | None:
    if doc.refusal is not None and doc.refusal.reason is Reason.INS_MISMATCH:
        return IntegrationError.INS_MISMATCH
    if doc.patient_ins is None:
        return None
    value = doc.patient_ins.value.strip().upper()
    if len(value) == 13 and ins.startswith(value):
        return IntegrationError.INCOMPLETE_INS
    if value != ins:
        return IntegrationError.INS_MISMATCH
    return None


class Filer:
    """Files the documents of delivered messages (one instance, built by the composition root).

    Args:
        store: the stored messages (read raw).
        documents: the patients' document store (and its record of handled messages).
        directory: the accounts hosted here and the national directory.
        receipts: sends integration receipts.
        patient_domain: the patients' mail domain (a sender there is not a professional).
        clock: the time of filing records.
    """

    def __init__(self, *, store: RawMessages, documents: DocumentStore,
                 directory: PatientDirectory, receipts: ReceiptSender, patient_domain: str,
                 clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.documents = documents
        self.directory = directory
        self.receipts = receipts
        self.patient_domain = patient_domain
        self.clock = clock

    async def handle_job(self, job: JobInfo) -> None:
        """The ``file_documents`` job: file message ``job.message_id`` for ``job.account_id``."""
        if job.account_id is None or job.message_id is None:
            return  # malformed job: nothing to do, do not retry forever
        await self.run(job.account_id, job.message_id)

    async def _sender(self, address: str) -> _Sender:
        addr = normalise_address(address) if address else ""
        d = self.directory
        acc = await d.lookup(addr) if addr else None
        if acc is not None:
            return _Sender(addr, acc.id, acc.rpps, acc.name, acc.profession, acc.bal_type,
                           acc.is_patient)
        entry = await d.national_entry(addr) if addr else None
        domain = addr.rpartition("@")[2]
        is_patient = domain == self.patient_domain or domain.startswith("patient.")
        if entry is not None:
            return _Sender(addr, None, entry.id_pp, entry.name, entry.profession, entry.bal_type,
                           False)
        return _Sender(addr, None, None, None, None, None, is_patient)

    async def _pharmacy_address(self, sender: _Sender, doc: Document) -> str | None:
        """The ORG pharmacy mailbox a dispensation came from (sender first, then institution)."""
        if sender.bal_type == "ORG" and sender.profession == PHARMACIST:
            return sender.address
        institution = doc.author.institution_id if doc.author else None
        if not institution:
            return None
        return await self.directory.organisation_address(institution, PHARMACIST)

    async def _new_document(self, doc: Document, sender: _Sender, message_id: int,
                            header_msgid: str, announced: tuple[str, ...]) -> NewDocument:
        type_code = doc.type_code
        label, needs_review = doc.label, doc.needs_review
        meta_type = _code(type_code)
        if type_code is None and len(announced) == 1 and doc.source is not DocumentSource.CONTENT:
            c = classify(type_code=announced[0], class_code=doc.class_code.code
                         if doc.class_code else None, text=doc.title or "",
                         filename=doc.filename)
            label, needs_review = c.label, c.needs_review
            meta_type = {"code": announced[0], "system": "X-MSS-CODECDA", "display": None}
        code = str(meta_type["code"]) if meta_type else None
        dispensation = bool((doc.class_code and doc.class_code.code == DISPENSATION_CLASS)
                            or code in DISPENSATION_TYPES)
        author: dict[str, Any] = {}
        if doc.author is not None and (doc.author.rpps or doc.author.name
                                       or doc.author.institution):
            a = doc.author
            author = {"rpps": a.rpps, "name": a.name, "institution": a.institution,
                      "institution_id": a.institution_id,
                      "profession": a.role.code if a.role else sender.profession,
                      "profession_display": a.role.display if a.role else None,
                      "specialty": a.specialty.display or a.specialty.code
                      if a.specialty else None}
        else:
            author = {"rpps": sender.rpps, "name": sender.name, "profession": sender.profession,
                      "address": sender.address}
        meta: dict[str, Any] = {
            "title": doc.title, "type_code": meta_type, "class_code": _code(doc.class_code),
            "format_code": _code(doc.format_code), "author": author,
            "creation_time": _iso(doc.creation_time), "service_start": _iso(doc.service_start),
            "service_stop": _iso(doc.service_stop), "confidentiality": list(doc.confidentiality),
            "unique_id": doc.unique_id, "set_id": doc.set_id, "version": doc.version,
            "classification": {"confidence": doc.confidence, "reason": doc.classification_reason,
                               "source": doc.source.value},
            "source": {"message_id": message_id, "message_id_header": header_msgid,
                       "from": sender.address, "part": doc.part_path},
            "sender": sender.as_dict(),
        }
        if dispensation:
            meta["pharmacy_address"] = await self._pharmacy_address(sender, doc)
        conf = {c.upper() for c in doc.confidentiality}
        return NewDocument(
            content=doc.content, sha256=doc.sha256, filename=doc.filename,
            mime_type=doc.mime_type, label=label, needs_review=needs_review,
            unique_id=doc.unique_id, masked="MASQUE_PS" in conf,
            hidden_from_patient="INVISIBLE_PATIENT" in conf, dispensation=dispensation, meta=meta)

    async def run(self, patient_id: int, message_id: int) -> FilingOutcome:
        """File the documents of stored message ``message_id`` for ``patient_id`` (idempotent)."""
        done = await self.documents.filings.get(patient_id, message_id)
        if done is not None:
            if done.mdn == "pending":
                return await self._finish_mdn(done, patient_id, message_id)
            return self._outcome(done, ())
        try:
            patient = await self.directory.get(patient_id)
        except NotFound:
            return await self._record(patient_id, message_id, "not_filed", "unknown_account",
                                      None, (), None)
        try:
            raw = await self.store.read_raw(message_id)
        except (NotFound, KeyDestroyed):
            # Expunged (or shredded) before the bridge ran: nothing left to file.
            return await self._record(patient_id, message_id, "not_filed", "message_gone",
                                      None, (), None)
        analysis = await asyncio.to_thread(analyse_message, raw)
        hf = parse_header_facts(raw)
        mdn_to = receipt_address(hf.mdn_to)
        wants_mdn = bool(mdn_to) and _carries_documents(analysis, hf.subject)
        status, reason, error, docs = await self._file(patient, message_id, analysis,
                                                       hf.message_id, hf.subject)
        return await self._record(patient_id, message_id, status, reason, error, docs,
                                  mdn_to if wants_mdn else None, raw=raw,
                                  final_recipient=patient.address)

    async def _file(self, patient: Any, message_id: int, analysis: Analysis, header_msgid: str,
                    subject: str) -> tuple[str, str | None, IntegrationError | None,
                                           tuple[tuple[int, str, bool], ...]]:
        facts = analysis.facts
        documents = analysis.documents
        if not patient.is_patient or not patient.ins:
            return "not_filed", "recipient_not_patient", IntegrationError.UNKNOWN_PATIENT, ()
        if patient.status != "open":
            # Pending, opposed, closed or suspended: the space does not exist (or no longer).
            # Delivery already refuses such recipients; this covers a job queued before the
            # status changed. The receipt says "unknown patient", never why.
            return "not_filed", "patient_not_open", IntegrationError.UNKNOWN_PATIENT, ()
        version = _XDM_SUBJECT.match(subject or facts.subject)
        if version and version.group(1) != "1.0":
            return "not_filed", "xdm_version", IntegrationError.WRONG_VERSION, ()
        sender = await self._sender(facts.from_addr)
        if sender.is_patient:
            return "not_filed", "sender_not_professional", IntegrationError.AUTHOR_NOT_ALLOWED, ()
        if not documents:
            if facts.codes_cda or facts.mss_ins == "O":
                return "not_filed", "no_documents", IntegrationError.OTHER, ()
            return "no_documents", None, None, ()
        ins_errors = [e for e in (_ins_error(d, patient.ins) for d in documents) if e]
        if ins_errors:
            return "not_filed", ins_errors[0].name.lower(), ins_errors[0], ()
        if facts.mss_ins == "O" and not any(d.patient_ins for d in documents):
            return "not_filed", "no_ins", IntegrationError.NO_INS, ()
        filed: list[tuple[int, str, bool]] = []
        refused = 0
        for doc in documents:
            if doc.refusal is not None or not doc.content:
                refused += 1
                continue
            new = await self._new_document(doc, sender, message_id, header_msgid,
                                           facts.codes_cda)
            result = await self.documents.file(
                patient.id, new, actor_account_id=sender.account_id, actor=sender.as_dict(),
                source_message_id=message_id)
            filed.append((result.document_id, new.filename, result.created))
            metrics.FILED_DOCUMENTS.labels(new.label.value).inc()
        found = {d.type_code.code for d in documents if d.type_code}
        reason = "codecda_missing" if set(facts.codes_cda) - found and len(facts.codes_cda) > 1 \
            else None
        if refused or analysis.refusal is not None:
            reason = (analysis.refusal.reason.value if analysis.refusal else
                      next(d.refusal.reason.value for d in documents if d.refusal))
            status = "partial" if filed else "not_filed"
            return status, reason, IntegrationError.OTHER, tuple(filed)
        return "filed", reason, None, tuple(filed)

    async def _record(self, patient_id: int, message_id: int, status: str, reason: str | None,
                      error: IntegrationError | None, docs: tuple[tuple[int, str, bool], ...],
                      mdn_to: str | None, *, raw: bytes | None = None,
                      final_recipient: str = "") -> FilingOutcome:
        payload: dict[str, Any] = {"documents": [[i, n, c] for i, n, c in docs]}
        if mdn_to:
            payload["mdn_to"] = mdn_to
            payload["final_recipient"] = final_recipient
        record = await self.documents.filings.record(
            patient_id, message_id, status=status, reason=reason,
            error_code=error.code if error else None, mdn="pending" if mdn_to else "none",
            result=payload, at=self.clock())
        metrics.FILING_MESSAGES.labels(status, str(error.code) if error else "").inc()
        log.info("dossier: message handled status=%s reason=%s documents=%d", status,
                 reason or "-", len(docs))
        if record.mdn == "pending":
            return await self._finish_mdn(record, patient_id, message_id, raw=raw)
        return self._outcome(record, docs)

    def _outcome(self, record: FilingRecord, docs: tuple[tuple[int, str, bool], ...]
                 ) -> FilingOutcome:
        error = IntegrationError.from_code(record.error_code) if record.error_code else None
        return FilingOutcome(record.status, record.reason, error, docs, record.mdn)

    async def _finish_mdn(self, record: FilingRecord, patient_id: int, message_id: int, *,
                          raw: bytes | None = None) -> FilingOutcome:
        payload = await self.documents.filings.result(patient_id, message_id, record)
        docs = tuple((int(i), str(n), bool(c)) for i, n, c in payload.get("documents", []))
        state = "undeliverable"
        notify_to = str(payload.get("mdn_to") or "")
        try:
            original = raw if raw is not None else await self.store.read_raw(message_id)
        except (NotFound, KeyDestroyed):
            original = None
        error = IntegrationError.from_code(record.error_code) if record.error_code else None
        if original is not None and notify_to:
            state = await self.receipts.integration_receipt(
                original, notify_to=notify_to,
                final_recipient=str(payload.get("final_recipient", "")), error=error)
        await self.documents.filings.set_mdn(record.id, state)
        return FilingOutcome(record.status, record.reason, error, docs, state)


def _carries_documents(analysis: Analysis, subject: str) -> bool:
    """Integration receipts only answer messages that carried documents (or announced them)."""
    facts = analysis.facts
    return bool(analysis.documents or facts.codes_cda or facts.mss_ins
                or _XDM_SUBJECT.match(subject or facts.subject))
