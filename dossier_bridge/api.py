"""What the webmail reaches of the bridge: what a message filed, and the patient's Documents
space. Both are built by the composition root, which hands them to the webmail as its
``DocumentFilings`` and ``PatientDocuments`` seams; neither package imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from attachments import DocumentSource, Label, Limits, Refusal, analyse_attachment
from attachments.cda import is_cda
from attachments.safexml import parse_xml
from dossier_bridge.access import PROFESSIONS
from dossier_bridge.store import DocumentInfo, DocumentStore
from mailserver.directory.service import AccountInfo, Directory
from mailserver.errors import NotFound, ValidationError

__all__ = ["DocumentFilingsView", "PatientDocumentsView", "PatientDocument", "DocumentPage",
           "AccessEntry", "AccessLog", "ConsentRow", "DoctorRow", "UploadRefused",
           "cda_sections", "PER_PAGE", "MAX_PATIENT_UPLOAD", "PATIENT_TYPES"]


class DocumentFilingsView:
    """Answers "which documents were filed from this message" (read only, no access log)."""

    def __init__(self, documents: DocumentStore) -> None:
        self.documents = documents

    async def filings_for_message(self, patient_id: int, message_id: int
                                  ) -> list[tuple[str, str]]:
        """(filename, label display name) of the documents of a message in the patient's record.

        Documents filed earlier from another message (same content) are included: they are in
        the record. Documents deleted since, or hidden from the patient, are left out. Empty
        when the message was not filed (yet).
        """
        result = await self.documents.filings.result(patient_id, message_id)
        entries = result.get("documents", [])
        labels = await self.documents.patient_labels(patient_id, [int(e[0]) for e in entries])
        return [(str(e[1]), labels[int(e[0])].display_fr) for e in entries
                if int(e[0]) in labels]


# -- the patient's Documents space, for the webmail (its ``PatientDocuments`` seam) ------------

PER_PAGE = 20
"""Documents per page of the patient's list."""

PATIENT_TYPES: dict[str, str] = {"application/pdf": ".pdf", "image/jpeg": ".jpg",
                                 "image/png": ".png"}
"""What a patient may add (content type -> file extension)."""

MAX_PATIENT_UPLOAD = 10 * 1000 * 1000
"""Size limit of a document the patient adds (bytes)."""


class UploadRefused(ValidationError):
    """A document the patient tried to add was refused; ``reason`` is a machine reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PatientDocument:
    """One document as the patient sees it."""

    id: int
    title: str
    label: str
    """Label code (``Label.value``)."""
    label_fr: str
    date: datetime
    author: str
    """The author's name; empty for the patient's own documents."""
    added_by: str
    """"me" (the patient) or "pro"."""
    masked: bool
    flagged: bool
    """The bridge was unsure of the label ("à vérifier"): the patient may relabel it."""
    content_type: str
    size: int
    filename: str

    @property
    def mine(self) -> bool:
        """Added by the patient: they may edit and delete it."""
        return self.added_by == "me"


@dataclass(frozen=True, slots=True)
class DocumentPage:
    """One page of the patient's list, and the count per label of the whole record."""

    documents: list[PatientDocument]
    page: int
    pages: int
    total: int
    counts: list[tuple[str, str, int]]
    """(label code, display name, count) for the 8 labels, in labels.csv order."""


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One entry of "Qui a consulté mes documents ?"."""

    seq: int
    at: datetime
    action: str
    who: str
    profession: str
    structure: str
    document_id: int | None
    document_title: str


@dataclass(frozen=True, slots=True)
class AccessLog:
    entries: list[AccessEntry]
    intact: bool


@dataclass(frozen=True, slots=True)
class ConsentRow:
    id: int
    kind: str
    """"team" (équipe de soins) or "structure" (établissement)."""
    name: str
    since: datetime


@dataclass(frozen=True, slots=True)
class DoctorRow:
    name: str
    address: str
    since: datetime


def _patient_document(info: DocumentInfo) -> PatientDocument:
    return PatientDocument(
        id=info.id, title=info.title, label=info.label.value, label_fr=info.label.display_fr,
        date=info.date, author="" if info.added_by_patient else str(
            info.author.get("name") or info.meta.get("sender_name") or ""),
        added_by="me" if info.added_by_patient else "pro", masked=info.masked,
        flagged=info.needs_review, content_type=info.mime_type, size=info.size,
        filename=info.filename)


def cda_sections(content: bytes) -> list[tuple[str, str]] | None:
    """A CDA document as readable (title, text) sections, or None when it is not CDA."""
    if not is_cda(content):
        return None
    root = parse_xml(content, Limits())
    if isinstance(root, Refusal):
        return None
    ns = "{urn:hl7-org:v3}"
    out: list[tuple[str, str]] = []
    title = root.find(f"{ns}title")
    if title is not None and (title.text or "").strip():
        out.append(("", " ".join((title.text or "").split())))
    for section in root.iter(f"{ns}section"):
        head = section.find(f"{ns}title")
        body = section.find(f"{ns}text")
        text = " ".join(" ".join(body.itertext()).split()) if body is not None else ""
        name = " ".join("".join(head.itertext()).split()) if head is not None else ""
        if name or text:
            out.append((name, text))
    return out


class PatientDocumentsView:
    """The patient's Documents space: every call acts as ``account`` on their own record
    (``account.id``), so another patient's ids are simply not found."""

    def __init__(self, documents: DocumentStore, directory: Directory) -> None:
        self.documents = documents
        self.directory = directory

    def readable(self, content: bytes) -> list[tuple[str, str]] | None:
        """A CDA document as readable sections (see `cda_sections`)."""
        return cda_sections(content)

    async def page(self, account: AccountInfo, *, label: str | None = None,
                   author: str = "", since: datetime | None = None,
                   until: datetime | None = None, added_by: str = "", page: int = 1
                   ) -> DocumentPage:
        """Newest first, filtered, ``PER_PAGE`` a page; counts are over the whole record."""
        everything = await self.documents.list(account, account.id)
        counts = {lab: 0 for lab in Label}
        for d in everything:
            counts[d.label] += 1
        wanted = Label(label) if label in Label.__members__ else None
        needle = author.casefold().strip()
        rows = [_patient_document(d) for d in everything
                if (wanted is None or d.label is wanted)
                and (since is None or d.date >= since) and (until is None or d.date <= until)]
        if added_by in ("me", "pro"):
            rows = [r for r in rows if r.added_by == added_by]
        if needle:
            rows = [r for r in rows if needle in r.author.casefold()]
        pages = max(1, -(-len(rows) // PER_PAGE))
        page = min(max(1, page), pages)
        return DocumentPage(rows[(page - 1) * PER_PAGE: page * PER_PAGE], page, pages,
                            len(rows), [(lab.value, lab.display_fr, counts[lab])
                                        for lab in Label])

    async def all_documents(self, account: AccountInfo) -> list[PatientDocument]:
        """Every document of the patient's record, oldest first (the export)."""
        everything = await self.documents.list(account, account.id)
        return sorted((_patient_document(d) for d in everything), key=lambda d: (d.date, d.id))

    async def get(self, account: AccountInfo, document_id: int) -> PatientDocument:
        """One document (NotFound when it is not in the patient's record)."""
        return _patient_document(await self.documents.get(account, account.id, document_id))

    async def content(self, account: AccountInfo, document_id: int
                      ) -> tuple[PatientDocument, bytes]:
        """A document and its bytes."""
        info, data = await self.documents.read(account, account.id, document_id)
        return _patient_document(info), data

    async def add(self, account: AccountInfo, content: bytes, *, filename: str,
                  content_type: str, title: str, created: datetime, label: str,
                  type_code: str | None = None) -> int:
        """File a document the patient adds, after the checks mail attachments pass
        (``type_code``: a class-90 code of the label, e.g. DOCPAT08 for the profile synthesis).

        Raises:
            UploadRefused: empty, too large, not PDF/JPEG/PNG, or refused by the analysis
                (``reason``: empty, too_large, type, label, or the analysis' reason).
        """
        if label not in Label.__members__:
            raise UploadRefused("label")
        if not content:
            raise UploadRefused("empty")
        if len(content) > MAX_PATIENT_UPLOAD:
            raise UploadRefused("too_large")
        docs = analyse_attachment(content, content_type or "application/octet-stream",
                                  filename or "document")
        if len(docs) != 1 or docs[0].source is DocumentSource.XDM:
            raise UploadRefused("type")
        doc = docs[0]
        if doc.refusal is not None:
            raise UploadRefused(doc.refusal.reason.value)
        if doc.mime_type not in PATIENT_TYPES:
            raise UploadRefused("type")
        result = await self.documents.upload(
            account, account.id, content, filename=doc.filename, mime_type=doc.mime_type,
            label=Label(label), title=title, created=created, type_code=type_code)
        return result.document_id

    async def edit(self, account: AccountInfo, document_id: int, *, title: str | None = None,
                   created: datetime | None = None, label: str | None = None) -> None:
        """Title and date of the patient's own documents; the label of their own or of a
        flagged document. AccessDenied otherwise."""
        if label is not None:
            if label not in Label.__members__:
                raise ValidationError("unknown label")
            current = await self.documents.get(account, account.id, document_id)
            if current.label.value != label:
                await self.documents.relabel(account, account.id, document_id, Label(label))
        if title is not None or created is not None:
            await self.documents.edit(account, account.id, document_id, title=title,
                                      created=created)

    async def set_masked(self, account: AccountInfo, document_id: int, masked: bool) -> None:
        await self.documents.set_masked(account, account.id, document_id, masked)

    async def delete(self, account: AccountInfo, document_id: int) -> None:
        await self.documents.delete(account, account.id, document_id)

    async def _who(self, cache: dict[int, tuple[str, str]], account_id: int | None
                   ) -> tuple[str, str]:
        """(structure, name) of a local account, looked up once per call."""
        if account_id is None:
            return "", ""
        if account_id not in cache:
            try:
                info = await self.directory.get(account_id)
            except NotFound:
                cache[account_id] = ("", "")
            else:
                entry = await self.directory.national_entry(info.address)
                structure = (entry.structure_name if entry and entry.structure_name
                             else info.structure_id or "")
                cache[account_id] = (structure, info.name or "")
        return cache[account_id]

    async def access_log(self, account: AccountInfo) -> AccessLog:
        """Every entry of the record's log, newest first, and the integrity verdict."""
        entries = await self.documents.access_log(account, account.id)
        report = await self.documents.verify_log(account.id)
        cache: dict[int, tuple[str, str]] = {}
        # Entries that recorded no title (masking, reads...) show the document's current one.
        titles = {d.id: d.title for d in await self.documents.list(account, account.id)}
        out = []
        for e in reversed(entries):
            d = e.detail
            if d.get("kind") == "patient":
                who, profession, structure = "Vous", "", ""
            else:
                structure, name = await self._who(cache, e.actor_account_id)
                who = str(d.get("name") or name or d.get("address") or "")
                profession = PROFESSIONS.get(str(d.get("profession") or ""), "")
                structure = str(structure or d.get("structure_id") or "")
            out.append(AccessEntry(e.seq, e.at, e.action, who, profession, structure,
                                   e.document_id, str(d.get("title") or titles.get(
                                       e.document_id or 0) or "")))
        return AccessLog(out, report.ok)

    async def consents(self, account: AccountInfo) -> list[ConsentRow]:
        rows = await self.documents.consents.list(account.id)
        teams = await self.documents.consents.team_names(
            [int(r.ref) for r in rows if r.scope == "team" and r.ref.isdigit()])
        return [ConsentRow(r.id, r.scope, teams.get(int(r.ref), r.ref)
                           if r.scope == "team" and r.ref.isdigit() else r.ref, r.granted_at)
                for r in rows]

    async def revoke_consent(self, account: AccountInfo, consent_id: int) -> bool:
        return await self.documents.consents.revoke_id(account.id, consent_id,
                                                       actor_account_id=account.id)

    async def treating_doctor(self, account: AccountInfo) -> DoctorRow | None:
        found = await self.documents.consents.treating_doctor_since(account.id)
        if found is None:
            return None
        try:
            doctor = await self.directory.get(found[0])
        except NotFound:
            return None
        return DoctorRow(doctor.name or doctor.address, doctor.address, found[1])

    async def set_treating_doctor(self, account: AccountInfo, address: str) -> bool:
        """Declare the physician at ``address`` (a local PER mailbox of a médecin); False when
        there is none."""
        doctor = await self.directory.lookup(address.strip().lower())
        if doctor is None or doctor.is_patient or doctor.profession != "10":
            return False
        await self.documents.consents.set_treating_doctor(account.id, doctor,
                                                          actor_account_id=account.id)
        return True
