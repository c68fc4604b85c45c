"""The patient's document store: file, list, read, upload, relabel, mask, delete, access log.

Theory of operation:

* **Encryption at rest.** A document's bytes are sealed with the patient's data key (AES-256-GCM,
  associated data ``dossier-doc:<patient>:<storage key>``); up to ``inline_max`` bytes the
  ciphertext sits in the row, larger ones go to the blob store (written and fsync'd before the row
  commits). Metadata (filename, title, codes, author, dates, source message) is one sealed JSON.
* **Idempotency.** Two keyed hashes identify a document within a record: HMAC of its SHA-256
  (``content_key``) and, when it has one, HMAC of its XDM/CDA uniqueId (``uid_key``); both are
  unique per patient. Filing a document whose content or uniqueId is already in the record
  returns the existing document (``created=False``) and writes nothing else.
* **Access.** Every operation takes the acting account; `Consents.viewer` says how it relates
  to the record and `dossier_bridge.access` decides. Reads by professionals and every filing or
  change append to the hash-chained access log (`dossier_bridge.audit`) in the same transaction.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from attachments.codes import DOCUMENT_TYPES
from attachments.labels import Label, classify
from attachments.limits import Limits
from attachments.pdftext import is_pdf, pdf_text
from dossier_bridge import audit
from dossier_bridge.access import DocFacts, Viewer, ViewerRole, may_delete, may_read, may_relabel
from dossier_bridge.consent import Consents
from dossier_bridge.crypto import PURPOSE_DEDUP, derive, keyed_hash
from dossier_bridge.errors import AccessDenied, DocumentNotFound
from dossier_bridge.filings import Filings
from dossier_bridge.models import DossierDocument, DossierLogEntry, DossierLogHead
from dossier_bridge.trail_store import TrailMirror
from mailserver.directory.service import AccountInfo
from mailserver.errors import KeyDestroyed, StoreError, ValidationError
from mailserver.store.blobs import BlobStore, new_blob_key
from mailserver.store.crypto import seal, unseal
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager

__all__ = ["DocumentStore", "NewDocument", "DocumentInfo", "FileResult", "PATIENT_TYPE_CODES",
           "meta_aad"]

# Type code given to documents the patient adds, per label (document-types.csv, class 90).
PATIENT_TYPE_CODES: dict[Label, str] = {
    Label.SYNTHESE: "DOCPAT01", Label.ORD_SOIN: "DOCPAT02", Label.CPT_REND: "DOCPAT03",
    Label.RADIO_SC: "DOCPAT04", Label.BIOLOGIE: "DOCPAT05", Label.DEPISTAG: "DOCPAT06",
    Label.CERT_MED: "DOCPAT07", Label.AUTR_DOC: "DOCPAT09",
}


def _patient_type_code(label: Label, asked: str | None) -> str:
    """The type code of a document the patient adds: ``asked`` if it is a class-90 code of
    ``label`` (document-types.csv), else the label's default DOCPAT code."""
    row = DOCUMENT_TYPES.get(asked or "")
    if row is not None and row[2] == "90" and row[3] == label.value:
        return asked or ""
    return PATIENT_TYPE_CODES[label]


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to file. ``meta`` is free JSON-able metadata kept sealed (title, codes,
    author, dates, source message...); the fields are what the store needs itself."""

    content: bytes = field(repr=False)
    sha256: str
    filename: str
    mime_type: str
    label: Label
    needs_review: bool = False
    unique_id: str | None = None
    masked: bool = False
    hidden_from_patient: bool = False
    dispensation: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A document as listed: flags in clear plus the unsealed metadata."""

    id: int
    patient_account_id: int
    label: Label
    needs_review: bool
    masked: bool
    hidden_from_patient: bool
    added_by_patient: bool
    added_by_account_id: int | None
    source_message_id: int | None
    filed_at: datetime
    size: int
    filename: str
    mime_type: str
    meta: dict[str, Any]

    @property
    def title(self) -> str:
        """Title, or the filename when the document has none."""
        return str(self.meta.get("title") or self.filename)

    @property
    def type_code(self) -> str | None:
        """Document type code (LOINC or TRE_A05), if known."""
        code = self.meta.get("type_code")
        return str(code["code"]) if isinstance(code, dict) and code.get("code") else None

    @property
    def author(self) -> dict[str, Any]:
        """Author facts: rpps, name, profession, institution... (may be empty)."""
        a = self.meta.get("author")
        return a if isinstance(a, dict) else {}

    @property
    def date(self) -> datetime:
        """The document's date (creation time) or, failing that, its filing date."""
        raw = self.meta.get("creation_time")
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw)
            except ValueError:
                pass
        return self.filed_at

    def facts(self) -> DocFacts:
        """The facts access decisions need."""
        return DocFacts(self.label, self.masked, self.hidden_from_patient, self.added_by_patient,
                        self.needs_review)


@dataclass(frozen=True, slots=True)
class FileResult:
    """Result of filing: the document id and whether it was new."""

    document_id: int
    created: bool


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _aad(kind: str, patient_id: int, storage_key: str) -> bytes:
    return f"dossier-{kind}:{patient_id}:{storage_key}".encode()


def meta_aad(patient_id: int, storage_key: str) -> bytes:
    """Associated data of a document's sealed metadata."""
    return _aad("meta", patient_id, storage_key)


class DocumentStore:
    """The service API of the patients' documents (used by the bridge, the webmail, the CLI)."""

    def __init__(self, db: Database, keys: KeyManager, blobs: BlobStore, *,
                 inline_max: int = 128 * 1024, trail: TrailMirror | None = None) -> None:
        self.db = db
        self.keys = keys
        self.blobs = blobs
        self.inline_max = inline_max
        self.trail = trail
        self.consents = Consents(db, keys, trail)
        self.filings = Filings(db, keys)

    # -- internals ----------------------------------------------------------------------------

    async def _existing(self, s: AsyncSession, patient_id: int, content_key: str,
                        uid_key: str | None) -> int | None:
        cond = DossierDocument.content_key == content_key
        if uid_key is not None:
            cond = cond | (DossierDocument.uid_key == uid_key)
        row = (await s.execute(select(DossierDocument.id).where(
            DossierDocument.patient_account_id == patient_id, cond).limit(1))).first()
        return row[0] if row else None

    def _info(self, data_key: bytes, row: DossierDocument) -> DocumentInfo:
        meta = json.loads(unseal(data_key, row.meta_enc,
                                 _aad("meta", row.patient_account_id, row.storage_key)))
        return DocumentInfo(
            id=row.id, patient_account_id=row.patient_account_id, label=Label(row.label),
            needs_review=row.needs_review, masked=row.masked,
            hidden_from_patient=row.hidden_from_patient, added_by_patient=row.added_by_patient,
            added_by_account_id=row.added_by_account_id,
            source_message_id=row.source_message_id, filed_at=_utc(row.filed_at), size=row.size,
            filename=str(meta.get("filename", "")), mime_type=str(meta.get("mime_type", "")),
            meta=meta)

    async def _row(self, patient_id: int, document_id: int) -> DossierDocument:
        async with self.db.session() as s:
            row = await s.get(DossierDocument, document_id)
        if row is None or row.patient_account_id != patient_id:
            raise DocumentNotFound("no such document")
        return row

    async def _visible(self, viewer: Viewer, patient_id: int, document_id: int
                       ) -> tuple[bytes, DossierDocument, DocumentInfo]:
        row = await self._row(patient_id, document_id)
        data_key = await self.keys.get(patient_id)
        info = self._info(data_key, row)
        if not may_read(viewer, info.facts()):
            raise DocumentNotFound("no such document")
        return data_key, row, info

    async def _log(self, s: AsyncSession, data_key: bytes, patient_id: int, action: str,
                   actor: int | None, document_id: int | None, detail: dict[str, Any]) -> None:
        await audit.append_in(s, data_key, patient_id, action=action, actor_account_id=actor,
                              document_id=document_id, detail=detail)
        if self.trail is not None:  # the operator's row, in the same transaction
            await self.trail.entry_in(s, patient_id, action, actor, document_id, detail)

    # -- filing -------------------------------------------------------------------------------

    async def file(self, patient_id: int, doc: NewDocument, *, actor_account_id: int | None,
                   actor: dict[str, Any] | None = None, source_message_id: int | None = None,
                   added_by_patient: bool = False) -> FileResult:
        """File ``doc`` in the record of ``patient_id`` (idempotent, see module docstring).

        Args:
            patient_id: the patient's account id.
            doc: the document.
            actor_account_id: the local account adding it (None for a remote sender).
            actor: who adds it, for the access log (rpps, name, profession, address).
            source_message_id: the stored message it came from.
            added_by_patient: True when the patient adds it (then they may edit/delete it).

        Raises:
            StoreError: storage failure (the caller retries; nothing half-filed remains).
        """
        data_key = await self.keys.get(patient_id)
        dedup = derive(data_key, PURPOSE_DEDUP)
        content_key = keyed_hash(dedup, "sha256", doc.sha256)
        uid_key = keyed_hash(dedup, "uid", doc.unique_id) if doc.unique_id else None
        async with self.db.session() as s:
            found = await self._existing(s, patient_id, content_key, uid_key)
        if found is not None:
            return FileResult(found, False)
        storage_key = new_blob_key()
        content_enc = seal(data_key, doc.content, _aad("doc", patient_id, storage_key))
        in_blob = len(content_enc) > self.inline_max
        if in_blob:
            await self.blobs.put(storage_key, content_enc)
        meta = {**doc.meta, "filename": doc.filename, "mime_type": doc.mime_type,
                "sha256": doc.sha256}
        meta_enc = seal(data_key, json.dumps(meta, sort_keys=True, default=str).encode(),
                        _aad("meta", patient_id, storage_key))
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> FileResult:
            again = await self._existing(s, patient_id, content_key, uid_key)
            if again is not None:
                return FileResult(again, False)
            row = DossierDocument(
                patient_account_id=patient_id, content_key=content_key, uid_key=uid_key,
                storage_key=storage_key, content_enc=None if in_blob else content_enc,
                size=len(doc.content), label=doc.label.value, needs_review=doc.needs_review,
                masked=doc.masked, hidden_from_patient=doc.hidden_from_patient,
                added_by_patient=added_by_patient, added_by_account_id=actor_account_id,
                source_message_id=source_message_id, dispensation=doc.dispensation,
                filed_at=now, updated_at=now, meta_enc=meta_enc)
            s.add(row)
            await s.flush()
            await self._log(s, data_key, patient_id, "file", actor_account_id, row.id,
                            {**(actor or {}), "title": str(meta.get("title") or doc.filename),
                             "label": doc.label.value})
            return FileResult(row.id, True)

        try:
            result = await self.db.write(op)
        except StoreError:
            if in_blob:
                await self.blobs.delete(storage_key)
            async with self.db.session() as s:  # lost a race with an identical filing?
                found = await self._existing(s, patient_id, content_key, uid_key)
            if found is None:
                raise
            return FileResult(found, False)
        if not result.created and in_blob:
            await self.blobs.delete(storage_key)
        return result

    async def upload(self, account: AccountInfo, patient_id: int, content: bytes, *,
                     filename: str, mime_type: str, label: Label | None = None,
                     title: str | None = None, created: datetime | None = None,
                     type_code: str | None = None) -> FileResult:
        """Add a document by hand: the patient, or any professional (consent not needed).

        Without a label the document is classified from its content (PDF text, filename);
        patient documents get the DOCPAT type code of their label, or ``type_code`` when it is a
        patient (class 90) code of that label (DOCPAT08 for the profile's synthesis).
        ``created`` is the document's own date (default: now).
        """
        viewer = await self.consents.viewer(account, patient_id)
        if viewer.role is ViewerRole.OTHER:
            raise AccessDenied("not allowed to add documents to this record")
        if not content:
            raise ValidationError("empty document")
        needs_review = False
        if label is None:
            text = pdf_text(content, Limits()) if is_pdf(content) else ""
            c = classify(text=text or (title or ""), filename=filename)
            label, needs_review = c.label, c.needs_review
        by_patient = viewer.role is ViewerRole.PATIENT
        meta: dict[str, Any] = {"title": title or filename, "origin": "upload",
                                "creation_time": _utc(created or datetime.now(UTC)).isoformat()}
        if by_patient:
            meta["type_code"] = {"code": _patient_type_code(label, type_code),
                                 "system": "TRE_A05"}
            meta["class_code"] = {"code": "90", "system": "TRE_A05"}
        else:
            meta["author"] = {"rpps": account.rpps, "name": account.name,
                              "profession": account.profession, "address": account.address}
        doc = NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                          filename=filename, mime_type=mime_type, label=label,
                          needs_review=needs_review, meta=meta)
        return await self.file(patient_id, doc, actor_account_id=account.id,
                               actor=_actor(account), added_by_patient=by_patient)

    # -- reading ------------------------------------------------------------------------------

    async def list(self, account: AccountInfo, patient_id: int, *, label: Label | None = None,
                   needs_review: bool | None = None, since: datetime | None = None,
                   until: datetime | None = None, type_code: str | None = None,
                   author_rpps: str | None = None, masked: bool | None = None
                   ) -> list[DocumentInfo]:
        """Documents of the record ``account`` may see, newest first, with optional filters."""
        viewer = await self.consents.viewer(account, patient_id)
        return await self.list_for(viewer, patient_id, label=label, needs_review=needs_review,
                                   since=since, until=until, type_code=type_code,
                                   author_rpps=author_rpps, masked=masked)

    async def list_for(self, viewer: Viewer, patient_id: int, *, label: Label | None = None,
                       needs_review: bool | None = None, since: datetime | None = None,
                       until: datetime | None = None, type_code: str | None = None,
                       author_rpps: str | None = None, masked: bool | None = None
                       ) -> builtins.list[DocumentInfo]:
        """`list` for an already resolved viewer (the CLI uses a patient viewer)."""
        if viewer.role in (ViewerRole.NO_CONSENT, ViewerRole.OTHER):
            return []
        q = select(DossierDocument).where(DossierDocument.patient_account_id == patient_id)
        if label is not None:
            q = q.where(DossierDocument.label == label.value)
        if needs_review is not None:
            q = q.where(DossierDocument.needs_review == needs_review)
        if masked is not None:
            q = q.where(DossierDocument.masked == masked)
        async with self.db.session() as s:
            rows = (await s.execute(q.order_by(DossierDocument.id))).scalars().all()
        data_key = await self.keys.get(patient_id)
        out = []
        for row in rows:
            info = self._info(data_key, row)
            if not may_read(viewer, info.facts()):
                continue
            if type_code is not None and info.type_code != type_code:
                continue
            if author_rpps is not None and info.author.get("rpps") != author_rpps:
                continue
            if since is not None and info.date < since:
                continue
            if until is not None and info.date > until:
                continue
            out.append(info)
        out.sort(key=lambda d: (d.date, d.id), reverse=True)
        return out

    async def patient_labels(self, patient_id: int, document_ids: builtins.list[int]
                             ) -> dict[int, Label]:
        """Label of each of ``document_ids`` still in the record and shown to its patient."""
        if not document_ids:
            return {}
        async with self.db.session() as s:
            rows = (await s.execute(select(
                DossierDocument.id, DossierDocument.label, DossierDocument.hidden_from_patient
            ).where(DossierDocument.patient_account_id == patient_id,
                    DossierDocument.id.in_(document_ids)))).all()
        return {i: Label(label) for i, label, hidden in rows if not hidden}

    async def get(self, account: AccountInfo, patient_id: int, document_id: int
                  ) -> DocumentInfo:
        """One document's metadata (no content, not logged)."""
        viewer = await self.consents.viewer(account, patient_id)
        return (await self._visible(viewer, patient_id, document_id))[2]

    async def read(self, account: AccountInfo, patient_id: int, document_id: int
                   ) -> tuple[DocumentInfo, bytes]:
        """A document and its content. A professional's read is logged before it is returned.

        Raises:
            DocumentNotFound: no such document, or not visible to ``account``.
        """
        viewer = await self.consents.viewer(account, patient_id)
        data_key, row, info = await self._visible(viewer, patient_id, document_id)
        if row.content_enc is not None:
            sealed = row.content_enc
        else:
            sealed = await self.blobs.get(row.storage_key)
        content = unseal(data_key, sealed, _aad("doc", patient_id, row.storage_key))
        if viewer.role is not ViewerRole.PATIENT:
            async def op(s: AsyncSession) -> None:
                await self._log(s, data_key, patient_id, "read", account.id, document_id,
                                {**_actor(account), "title": info.title,
                                 "label": info.label.value,
                                 "treating_doctor": viewer.role is ViewerRole.TREATING_DOCTOR})

            await self.db.write(op)
        return info, content

    # -- changes by the patient ----------------------------------------------------------------

    async def _update(self, account: AccountInfo, patient_id: int, document_id: int,
                      action: str, detail: dict[str, Any], **values: Any) -> None:
        data_key = await self.keys.get(patient_id)

        async def op(s: AsyncSession) -> None:
            row = await s.get(DossierDocument, document_id)
            if row is None or row.patient_account_id != patient_id:
                raise DocumentNotFound("no such document")
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
            await self._log(s, data_key, patient_id, action, account.id, document_id,
                            {**_actor(account), **detail})

        await self.db.write(op)

    async def relabel(self, account: AccountInfo, patient_id: int, document_id: int,
                      label: Label) -> None:
        """Move a document under another label (clears the review flag)."""
        viewer = await self.consents.viewer(account, patient_id)
        _k, _row, info = await self._visible(viewer, patient_id, document_id)
        if not may_relabel(viewer, info.facts()):
            raise AccessDenied("only documents you added or flagged for review can be relabelled")
        await self._update(account, patient_id, document_id, "relabel",
                           {"from": info.label.value, "to": label.value},
                           label=label.value, needs_review=False)

    async def edit(self, account: AccountInfo, patient_id: int, document_id: int, *,
                   title: str | None = None, created: datetime | None = None) -> None:
        """Change the title and/or the date of a document the patient added (logged)."""
        viewer = await self.consents.viewer(account, patient_id)
        data_key, row, info = await self._visible(viewer, patient_id, document_id)
        if not may_delete(viewer, info.facts()):
            raise AccessDenied("only documents you added can be edited")
        meta = dict(info.meta)
        changed: dict[str, Any] = {}
        if title is not None and title != info.title:
            meta["title"] = changed["title"] = title
        if created is not None:
            meta["creation_time"] = changed["date"] = _utc(created).isoformat()
        if not changed:
            return
        meta_enc = seal(data_key, json.dumps(meta, sort_keys=True, default=str).encode(),
                        _aad("meta", patient_id, row.storage_key))
        await self._update(account, patient_id, document_id, "edit",
                           {"title": str(meta.get("title") or info.filename),
                            "changed": sorted(changed)}, meta_enc=meta_enc)

    async def set_masked(self, account: AccountInfo, patient_id: int, document_id: int,
                         masked: bool) -> None:
        """Mask (hide from professionals, except the treating doctor) or unmask a document."""
        viewer = await self.consents.viewer(account, patient_id)
        if viewer.role is not ViewerRole.PATIENT:
            raise AccessDenied("only the patient masks documents")
        await self._visible(viewer, patient_id, document_id)
        await self._update(account, patient_id, document_id, "mask" if masked else "unmask", {},
                           masked=masked)

    async def delete(self, account: AccountInfo, patient_id: int, document_id: int) -> None:
        """Delete a document the patient added (content, metadata; the log keeps the trace)."""
        viewer = await self.consents.viewer(account, patient_id)
        data_key, row, info = await self._visible(viewer, patient_id, document_id)
        if not may_delete(viewer, info.facts()):
            raise AccessDenied("only documents you added can be deleted")

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(DossierDocument).where(DossierDocument.id == document_id))
            await self._log(s, data_key, patient_id, "delete", account.id, document_id,
                            {**_actor(account), "title": info.title})

        await self.db.write(op)
        if row.content_enc is None:
            await self.blobs.delete(row.storage_key)

    # -- access log ---------------------------------------------------------------------------

    async def _log_rows(self, patient_id: int) -> builtins.list[DossierLogEntry]:
        async with self.db.session() as s:
            return list((await s.execute(select(DossierLogEntry).where(
                DossierLogEntry.patient_account_id == patient_id).order_by(DossierLogEntry.seq)
            )).scalars().all())

    async def access_log(self, account: AccountInfo, patient_id: int, *,
                         reads_only: bool = False) -> builtins.list[audit.LogEntry]:
        """The record's access log for its patient ("Qui a consulté mes documents ?")."""
        if not (account.is_patient and account.id == patient_id):
            raise AccessDenied("only the patient reads their access log")
        return await self.log_entries(patient_id, reads_only=reads_only)

    async def log_entries(self, patient_id: int, *, reads_only: bool = False
                          ) -> builtins.list[audit.LogEntry]:
        """Decoded log entries (administrative use; no access check)."""
        entries = audit.decode_entries(await self.keys.get(patient_id), patient_id,
                                       await self._log_rows(patient_id))
        return [e for e in entries if e.action == "read"] if reads_only else entries

    async def anchor_legacy_logs(self) -> int:
        """Anchor the access logs written before head rows existed at their current last entry.

        Run once, by the composition root, when the heads table has just been created: run
        later, it would re-anchor a log whose head row was deleted, hiding a truncation.
        Returns how many logs were anchored."""
        async with self.db.session() as s:
            patients = (await s.execute(
                select(DossierLogEntry.patient_account_id).distinct())).scalars().all()
        anchored = 0
        for patient_id in patients:
            try:
                data_key = await self.keys.get(patient_id)
            except KeyDestroyed:
                continue

            async def op(s: AsyncSession, pid: int = patient_id, key: bytes = data_key) -> bool:
                return await audit.anchor_legacy_in(s, key, pid)

            anchored += await self.db.write(op)
        return anchored

    async def verify_log(self, patient_id: int) -> audit.AuditReport:
        """Verify the hash chain of the record's access log."""
        async with self.db.session() as s:  # the head first: see audit._head_problem
            head = await s.get(DossierLogHead, patient_id)
        rows = await self._log_rows(patient_id)
        return audit.verify_entries(await self.keys.get(patient_id), patient_id, rows, head)


def _actor(account: AccountInfo) -> dict[str, Any]:
    if account.is_patient:
        return {"kind": "patient"}
    return {"kind": "pro", "rpps": account.rpps, "name": account.name,
            "profession": account.profession, "address": account.address,
            "bal_type": account.bal_type, "structure_id": account.structure_id}

