"""The export's wiring (below the composition root, above the packages it joins): the
:class:`AccountExport` of the mail store, the documents, their access log and the profile,
and the prepared archives of large spaces with their notice."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dossier_bridge.api import PatientDocumentsView
from dossier_bridge.fhir.profile_resources import BundleDocument, PatientIdentity, profile_bundle
from dossier_bridge.profile_store import PatientProfileView, ProfileStore
from dossier_bridge.store import DocumentStore
from mailserver.config import Config
from mailserver.directory.service import AccountInfo, Directory
from mailserver.export.archive import AccountExport
from mailserver.export.messages import StoreMessages
from mailserver.export.prepared import PreparedExports
from mailserver.lifecycle import PARIS
from mailserver.mailer import Mailer, PersonalMail
from mailserver.store.conversations import Conversations
from mailserver.store.db import Database
from mailserver.store.export_queries import ExportQueries
from mailserver.store.keys import KeyManager
from mailserver.store.mailstore import MailStore
from webmail.documents import ACTIONS
from webmail.profile import profile_json

__all__ = ["build_account_export", "build_prepared_exports", "READY_SUBJECT"]

READY_SUBJECT = "Votre archive est prête"


class _ExportProfile:
    """The export's profile reader: the ``GET /api/profile`` JSON and the FHIR Bundle
    (``dossier_bridge.fhir.profile_resources``, validated by ``fhir.resources``)."""

    def __init__(self, profile: PatientProfileView, documents: PatientDocumentsView,
                 directory: Directory) -> None:
        self.view = profile
        self.documents = documents
        self.directory = directory

    async def profile(self, account: AccountInfo) -> Mapping[str, Any]:
        return await profile_json(self.view, account)

    async def fhir_bundle(self, account: AccountInfo, files: Mapping[int, str]
                          ) -> Mapping[str, Any] | None:
        data = await profile_json(self.view, account)
        given, _, family = (await self.directory.patient_name(account.id)).partition(" ")
        patient = PatientIdentity(ins=account.ins or "", key=str(account.id),
                                  family=family, given=given)
        docs = [BundleDocument(id=f"document-{d.id}", title=d.title,
                               content_type=d.content_type, url=files[d.id], date=d.date,
                               size=d.size, label=d.label_fr)
                for d in await self.documents.all_documents(account) if d.id in files]
        return profile_bundle(patient, data["rubrics"], docs,
                              today=datetime.now(PARIS).date().isoformat())


def build_account_export(db: Database, store: MailStore, conversations: Conversations,
                         documents: DocumentStore, directory: Directory,
                         profile: ProfileStore) -> AccountExport:
    """The patient's data export (the webmail's ``/api/export``, ``mssante accounts export``
    and the prepared archives)."""
    view = PatientDocumentsView(documents, directory)
    return AccountExport(StoreMessages(ExportQueries(db), store, conversations), view, view,
                         _ExportProfile(PatientProfileView(profile), view, directory),
                         actions=ACTIONS)


def _ready_body(base_url: str, expires: datetime) -> str:
    where = f"{base_url.rstrip('/')}/parametres/export" if base_url else \
        "la page « Télécharger mes données » de vos Paramètres"
    return ("Bonjour,\n\nL'archive de vos données que vous avez demandée est prête.\n"
            f"Vous pouvez la télécharger depuis {where}, après vous être connecté(e), jusqu'au "
            f"{expires.astimezone(PARIS):%d/%m/%Y}. Elle sera ensuite supprimée.\n\n"
            "Si vous n'avez rien demandé, appelez le 3422.\n")


def build_prepared_exports(config: Config, db: Database, keys: KeyManager, store: MailStore,
                           export: AccountExport, directory: Directory, mailer: Mailer
                           ) -> PreparedExports:
    """The prepared archives, and their notice by mail to the personal address (no health
    content: it says an archive is ready, and where)."""

    async def notify(account_id: int, expires: datetime) -> None:
        email = (await directory.contact(account_id)).get("email", "")
        if email:
            await mailer.send(PersonalMail(email, READY_SUBJECT,
                                           _ready_body(config.webmail.base_url, expires)))

    return PreparedExports(db, keys, store.blobs, export, directory,
                           threshold=config.export.background_threshold_mb * 1024 * 1024,
                           keep=timedelta(days=config.export.ready_days), notify=notify)
