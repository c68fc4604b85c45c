"""What the webmail receives from the composition root.

The webmail knows no ``Services`` and imports no wiring module: :class:`WebmailDeps` holds the
narrow collaborators it uses, built by the root (``mailserver/runtime.py``). The seams it only
calls through (read receipts, personal mail, the dossier bridge's filings) are protocols
declared here, so the webmail never imports the packages that fill them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mailserver.config import ListenConfig, WebmailConfig
from mailserver.delivery import Delivery
from mailserver.directory.closing import AccountClosing
from mailserver.directory.service import AccountInfo, Directory
from mailserver.export.archive import DocumentMeta
from mailserver.export.prepared import PreparedExports
from mailserver.mailer import PersonalMail
from mailserver.store.audit import AuditTrail
from mailserver.store.conversations import Conversations
from mailserver.store.mailstore import MailStore
from mailserver.store.webmail_queries import WebmailQueries
from webmail.store import WebmailStore

__all__ = ["WebmailDeps", "WebmailSettings", "ReadReceipts", "PersonalMailer",
           "DocumentFilings", "PatientDocuments", "DocumentRow", "DocumentsPage", "AccessRow",
           "AccessLogView", "ConsentView", "DoctorView", "PatientProfile", "ProfileEntryRow",
           "AccountExporter"]


class ReadReceipts(Protocol):
    """Sends the ``displayed`` MDN (RFC 8098) of a message the patient opened, once."""

    async def read_receipt(self, reader: AccountInfo, message_id: int) -> bool: ...


class PersonalMailer(Protocol):
    """Mail to a patient's personal address (one-time codes, reset links)."""

    async def send(self, mail: PersonalMail) -> None: ...


class DocumentFilings(Protocol):
    """What the dossier bridge filed from a message: (filename, label shown to the patient)."""

    async def filings_for_message(self, patient_id: int, message_id: int
                                  ) -> list[tuple[str, str]]: ...


class DocumentRow(DocumentMeta, Protocol):
    """A document of the patient's record as the webmail shows it (what the export reads of
    one, and more)."""

    @property
    def added_by(self) -> str: ...
    @property
    def flagged(self) -> bool: ...
    @property
    def mine(self) -> bool: ...


class DocumentsPage(Protocol):
    @property
    def documents(self) -> Sequence[DocumentRow]: ...
    @property
    def page(self) -> int: ...
    @property
    def pages(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def counts(self) -> Sequence[tuple[str, str, int]]: ...


class AccessRow(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def who(self) -> str: ...
    @property
    def profession(self) -> str: ...
    @property
    def structure(self) -> str: ...
    @property
    def document_id(self) -> int | None: ...
    @property
    def document_title(self) -> str: ...


class AccessLogView(Protocol):
    @property
    def entries(self) -> Sequence[AccessRow]: ...
    @property
    def intact(self) -> bool: ...


class ConsentView(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def since(self) -> datetime: ...


class DoctorView(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def since(self) -> datetime: ...


class PatientDocuments(Protocol):
    """The patient's Documents space (filled by the root from the dossier bridge).

    Every call acts on ``account``'s own record. Errors: ``mailserver.errors.NotFound`` (not in
    this record), ``ValidationError`` (bad input; ``reason`` on refused uploads), any other
    ``MssanteError`` for a refused change (the webmail checks the rules first to explain them).
    """

    async def page(self, account: AccountInfo, *, label: str | None = None, author: str = "",
                   since: datetime | None = None, until: datetime | None = None,
                   added_by: str = "", page: int = 1) -> DocumentsPage: ...
    async def get(self, account: AccountInfo, document_id: int) -> DocumentRow: ...
    async def content(self, account: AccountInfo, document_id: int
                      ) -> tuple[DocumentRow, bytes]: ...
    async def add(self, account: AccountInfo, content: bytes, *, filename: str,
                  content_type: str, title: str, created: datetime, label: str,
                  type_code: str | None = None) -> int: ...
    async def edit(self, account: AccountInfo, document_id: int, *, title: str | None = None,
                   created: datetime | None = None, label: str | None = None) -> None: ...
    async def set_masked(self, account: AccountInfo, document_id: int,
                         masked: bool) -> None: ...
    async def delete(self, account: AccountInfo, document_id: int) -> None: ...
    async def access_log(self, account: AccountInfo) -> AccessLogView: ...
    async def consents(self, account: AccountInfo) -> Sequence[ConsentView]: ...
    async def revoke_consent(self, account: AccountInfo, consent_id: int) -> bool: ...
    async def treating_doctor(self, account: AccountInfo) -> DoctorView | None: ...
    async def set_treating_doctor(self, account: AccountInfo, address: str) -> bool: ...
    def readable(self, content: bytes) -> Sequence[tuple[str, str]] | None:
        """A CDA document as (section title, text), or None when it is not CDA."""
        ...


class ProfileEntryRow(Protocol):
    """An entry of the patient's medical profile (fields as in ``mailserver.profile``)."""

    @property
    def id(self) -> int: ...
    @property
    def rubric(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def added_at(self) -> datetime: ...
    @property
    def added_by(self) -> str: ...
    @property
    def added_by_kind(self) -> str:
        """``patient``, ``professional`` or ``application``."""
        ...


class PatientProfile(Protocol):
    """The patient's medical profile (filled by the root from the dossier bridge).

    Every call acts on ``account``'s own profile; ``rubric`` is a slug of
    ``mailserver.profile.RUBRIC_SLUGS``. Errors: ``mailserver.errors.NotFound`` (no such entry
    in this rubric of this profile), ``mailserver.profile.EntryInvalid`` (French messages by
    field). ``update`` merges ``changes`` into the entry (``None`` removes a field).
    """

    async def entries(self, account: AccountInfo, rubric: str | None = None
                      ) -> Sequence[ProfileEntryRow]: ...
    async def get(self, account: AccountInfo, rubric: str, entry_id: int
                  ) -> ProfileEntryRow: ...
    async def add(self, account: AccountInfo, rubric: str, raw: Mapping[str, object]
                  ) -> ProfileEntryRow: ...
    async def update(self, account: AccountInfo, rubric: str, entry_id: int,
                     changes: Mapping[str, object]) -> ProfileEntryRow: ...
    async def delete(self, account: AccountInfo, rubric: str, entry_id: int) -> None: ...


class AccountExporter(Protocol):
    """The patient's data export (``mailserver.export``, wired by the root): the ZIP archive
    of their space, as chunks."""

    def stream(self, account: AccountInfo, now: datetime) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class WebmailSettings:
    """The configuration values the webmail reads."""

    webmail: WebmailConfig
    domain: str
    patient_domain: str
    hostname: str
    extra_domains: tuple[str, ...]
    listen: ListenConfig
    """The listeners actually bound (announced to mail clients by autoconfig)."""
    lockout_seconds: int = 300
    """How long the directory locks a name after too many failed logins (``[auth]``)."""


@dataclass(frozen=True)
class WebmailDeps:
    """The webmail's collaborators (see the module docstring)."""

    settings: WebmailSettings
    directory: Directory
    audit: AuditTrail
    """The operator's audit trail (messages opened)."""
    store: MailStore
    conversations: Conversations
    delivery: Delivery
    queries: WebmailQueries
    webstore: WebmailStore
    receipts: ReadReceipts
    mailer: PersonalMailer
    documents: DocumentFilings | None = None
    patient_documents: PatientDocuments | None = None
    max_document_upload: int = 10 * 1000 * 1000
    """Size limit of a document the patient adds (the bridge enforces it too)."""
    profile: PatientProfile | None = None
    """The patient's medical profile ("Profil médical", ``/api/profile``)."""
    export: AccountExporter | None = None
    """"Télécharger mes données" (``/parametres/export``, ``/api/export``)."""
    closing: AccountClosing | None = None
    """Closing the space, deletion requests ("Fermer mon espace santé")."""
    prepared: PreparedExports | None = None
    """The archives of large spaces, prepared in the background ("Préparer l'archive")."""
