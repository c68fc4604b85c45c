"""Composition root: builds every object from a Config. Front ends receive these objects.

Only this module (with ``runtime.py``, ``cli/`` and ``schema.py``) knows every package; what it
builds receives narrow collaborators through its constructor. The job kinds are registered here,
in one table (:func:`job_table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dossier_bridge.archive_store import erase_patient_in
from dossier_bridge.filing import Filer
from dossier_bridge.models import LOG_HEADS_TABLE
from dossier_bridge.pharmacy import DossierPharmacies
from dossier_bridge.profile_store import ProfileStore
from dossier_bridge.store import DocumentStore
from dossier_bridge.trail_store import TrailMirror
from mailserver.config import Config
from mailserver.delivery import (
    JOB_FILE_DOCUMENTS,
    JOB_NOTIFY_PATIENT,
    Delivery,
    Outbound,
    PharmacySource,
    TrustSpace,
)
from mailserver.directory.archive_job import ArchiveJob
from mailserver.directory.closing import JOB_DELETE_ARCHIVE, AccountClosing
from mailserver.directory.inactivity import JOB_INACTIVE, InactivitySweep
from mailserver.directory.passwords import Passwords
from mailserver.directory.service import Directory
from mailserver.export.prepared import JOB_EXPIRE_EXPORT, JOB_PREPARE_EXPORT, PreparedExports
from mailserver.export_root import build_account_export, build_prepared_exports
from mailserver.imap.backend import ImapBackend
from mailserver.imap.summaries import SummaryWarmer
from mailserver.inbox_index import build_index
from mailserver.mailer import Mailer, PersonalMail
from mailserver.migrations import Upgrade, ensure_schema
from mailserver.notices import SystemMail, SystemMailSettings
from mailserver.outbound.queue import OutboundQueue
from mailserver.store import prepared_exports
from mailserver.store.audit import JOB_PURGE_AUDIT, AuditTrail
from mailserver.store.audit_queries import AuditPurge
from mailserver.store.blob_sweep import JOB_SWEEP_BLOBS, BlobSweep
from mailserver.store.blobs import BlobBackend, LocalBlobStore
from mailserver.store.conversations import Conversations
from mailserver.store.crypto import MasterKeyring
from mailserver.store.db import Database
from mailserver.store.erase import erase_mail_in
from mailserver.store.events import MailboxEvents
from mailserver.store.finished import JOB_PURGE_FINISHED, FinishedPurge
from mailserver.store.imapmeta import ImapStore
from mailserver.store.jobs import Jobs
from mailserver.store.keys import KeyManager
from mailserver.store.mailstore import MailStore
from mailserver.store.s3blobs import S3BlobStore, S3Settings
from mailserver.store.sent import SentRecords
from mailserver.store.vanished import JOB_PRUNE_VANISHED, TombstonePrune
from mailserver.trust.resolver import DnsResolver, Resolver
from mailserver.trust.space import TrustSpaceService, resolver_from_zone_file
from mailserver.workers import JobHandler, JobRunner
from webmail.store import WebmailStore

__all__ = ["Services", "open_services", "build_trust_space", "job_table", "inactivity_sweep",
           "blob_sweep", "open_blobs", "audit_purge", "tombstone_prune", "finished_purge"]


@dataclass
class Services:
    config: Config
    db: Database
    keys: KeyManager
    store: MailStore
    directory: Directory
    conversations: Conversations
    jobs: Jobs
    delivery: Delivery
    events: MailboxEvents
    sent: SentRecords
    mailer: Mailer
    system_mail: SystemMail
    runner: JobRunner
    documents: DocumentStore
    """The patients' document store (dossier bridge): filing, the webmail, the CLI, /fhir."""
    profile: ProfileStore
    """The patients' medical profiles (dossier bridge): the webmail, ``/api/profile``."""
    closing: AccountClosing
    """Closing, archive, deletion on request, reactivation and purge of patients' spaces."""
    blobs: BlobBackend
    """The blob store (local folder or S3 bucket), owned here: closed by :meth:`close`."""
    audit: AuditTrail
    """The operator's audit trail of mailbox actions (given to each recorder)."""
    trust: TrustSpace | None = None
    """The trust space (mailserver.trust.space.TrustSpaceService unless one was passed in)."""
    queue: Outbound | None = None
    """The outbound queue (mailserver.outbound.queue.OutboundQueue unless one was passed in)."""
    prepared_exports: PreparedExports | None = None
    """The export archives of large spaces, prepared in the background."""
    schema_upgrade: Upgrade | None = None
    """The schema upgrade done while opening (None: the database was at this release's)."""
    summaries: SummaryWarmer | None = None
    """Builds delivered messages' IMAP summaries after the commit (given to delivery)."""

    def imap_backend(self) -> ImapBackend:
        """What the IMAP server receives."""
        return ImapBackend(self.config.imap, self.store, self.directory, self.events,
                           self.audit)

    async def close(self) -> None:
        if self.summaries is not None:
            await self.summaries.stop()
        await self.audit.flush()
        await self.blobs.close()
        await self.db.close()


def system_mail_settings(config: Config) -> SystemMailSettings:
    base = config.webmail.base_url or (
        f"http://{config.listen.http}" if config.listen.http else "")
    return SystemMailSettings(hostname=config.hostname, domain=config.domain,
                              patient_domain=config.patient_domain, base_url=base)


def job_table(services: Services) -> dict[str, JobHandler]:
    """The one table of job kinds and their handlers."""
    filer = Filer(store=services.store, documents=services.documents,
                  directory=services.directory,
                  receipts=services.system_mail, patient_domain=services.config.patient_domain)
    table: dict[str, JobHandler] = {
        JOB_FILE_DOCUMENTS: filer.handle_job,
        JOB_NOTIFY_PATIENT: services.system_mail.notify_patient_job,
        JOB_DELETE_ARCHIVE: ArchiveJob(services.closing).handle_job,
        JOB_INACTIVE: inactivity_sweep(services).handle_job,
        JOB_SWEEP_BLOBS: blob_sweep(services).handle_job,
        JOB_PRUNE_VANISHED: tombstone_prune(services).handle_job,
        JOB_PURGE_AUDIT: audit_purge(services).handle_job,
        JOB_PURGE_FINISHED: finished_purge(services).handle_job}
    if services.prepared_exports is not None:
        table[JOB_PREPARE_EXPORT] = services.prepared_exports.handle_prepare
        table[JOB_EXPIRE_EXPORT] = services.prepared_exports.handle_expire
    return table


def build_closing(config: Config, db: Database, directory: Directory, keys: KeyManager,
                  store: MailStore, mailer: Mailer) -> AccountClosing:
    """The account closing service, with every package's eraser of a patient's space."""

    async def acknowledge(to: str, subject: str, body: str) -> None:
        await mailer.send(PersonalMail(to, subject, body))

    return AccountClosing(
        db, directory, keys, store.blobs,
        erasers=(WebmailStore.erase_account_in, erase_patient_in, erase_mail_in,
                 prepared_exports.erase_account_in),
        close_hooks=(WebmailStore.end_sessions_in,), acknowledge=acknowledge,
        deletion_delay=timedelta(days=config.lifecycle.deletion_delay_days))


def blob_sweep(services: Services) -> BlobSweep:
    """The orphan blob sweep (``[store] orphan_blob_margin_seconds``)."""
    cfg = services.config.store
    return BlobSweep(services.db, services.blobs, margin=cfg.orphan_blob_margin_seconds,
                     interval=cfg.orphan_sweep_seconds)


def tombstone_prune(services: Services) -> TombstonePrune:
    """The QRESYNC tombstones' pruning job (``[imap] vanished_keep``)."""
    cfg = services.config.imap
    return TombstonePrune(services.db, keep=cfg.vanished_keep,
                          interval=cfg.vanished_prune_seconds)


def audit_purge(services: Services) -> AuditPurge:
    """The audit trail's retention job (``[audit]``)."""
    return AuditPurge(services.audit, interval=services.config.audit.purge_interval_seconds)


def finished_purge(services: Services) -> FinishedPurge:
    """The purge of finished jobs and outbound queue messages (``[jobs]``)."""
    cfg = services.config.jobs
    return FinishedPurge(services.db, keep_days=cfg.keep_done_days,
                         interval=cfg.purge_interval_seconds)


def inactivity_sweep(services: Services) -> InactivitySweep:
    """The inactive professional mailboxes' job (``[inactivity]``)."""
    return InactivitySweep(services.jobs, services.config.inactivity,
                           services.system_mail.inactivity_notice)


async def open_blobs(config: Config) -> BlobBackend:
    """The blob store of ``[store]``: an S3 bucket (``blob_url``; its one client created now)
    or the local folder ``blob_dir``."""
    cfg = config.store
    location = cfg.s3_location
    if location is None:
        return LocalBlobStore(config.path(cfg.blob_dir))
    store = S3BlobStore(S3Settings(
        bucket=location[0], prefix=location[1], endpoint=cfg.s3_endpoint or None,
        region=cfg.s3_region, access_key_id=cfg.s3_access_key_id or None,
        secret_access_key=cfg.s3_secret_access_key or None,
        multipart_threshold=cfg.s3_multipart_threshold))
    await store.start()
    return store


async def open_services(config: Config, *, fast_passwords: bool = False,
                        trust: TrustSpace | None = None, outbound: Outbound | None = None,
                        pharmacies: PharmacySource | None = None,
                        migrate: bool = False) -> Services:
    """Check the schema (an empty database is created, one behind is upgraded only when
    ``migrate``: see mailserver.migrations), load the master key, wire the services."""
    upgraded = await ensure_schema(config.database_url, migrate=migrate)
    created = upgraded.created if upgraded else frozenset()
    db = Database(config.database_url, group_commit_max=config.store.group_commit_max)
    ring = MasterKeyring.load(config.path(config.store.master_key_file))
    keys = KeyManager(db, ring, config.store.key_cache_size)
    events = MailboxEvents()
    audit = AuditTrail(db, retention_days=config.audit.retention_days)
    blobs = await open_blobs(config)
    store = MailStore(db, keys, blobs, inline_max=config.store.inline_max, events=events)
    directory = Directory(db, store, keys, domain=config.domain,
                          patient_domain=config.patient_domain, auth=config.auth, audit=audit,
                          passwords=Passwords(fast=fast_passwords))
    conversations = Conversations(db, keys)
    # Conversations from before the inbox index get indexed before anything is served.
    await build_index(store, conversations, directory)
    jobs = Jobs(db)
    trust = trust if trust is not None else build_trust_space(config)
    outbound = outbound if outbound is not None else OutboundQueue(config, db, ring)
    pharmacies = pharmacies if pharmacies is not None else DossierPharmacies(db, keys)
    warmer = SummaryWarmer(ImapStore(store))
    delivery = Delivery(config=config, directory=directory, store=store,
                        conversations=conversations, jobs=jobs, trust=trust, audit=audit,
                        outbound=outbound, pharmacies=pharmacies, stored=warmer.stored)
    sent = SentRecords(db)
    mailer = Mailer(config)
    system_mail = SystemMail(system_mail_settings(config), store=store, delivery=delivery,
                             directory=directory, sent=sent, mailer=mailer)
    runner = JobRunner(jobs, {}, wake=events)
    documents = DocumentStore(db, keys, store.blobs, inline_max=config.store.inline_max,
                              trail=TrailMirror(audit))
    if LOG_HEADS_TABLE in created:  # one-off upgrade: logs written before head rows existed
        await documents.anchor_legacy_logs()
    services = Services(config, db, keys, store, directory, conversations, jobs, delivery,
                        events, sent, mailer, system_mail, runner, documents,
                        ProfileStore(db, keys),
                        build_closing(config, db, directory, keys, store, mailer), blobs, audit,
                        trust=trust,
                        queue=outbound)
    services.prepared_exports = build_prepared_exports(
        config, db, keys, store, build_account_export(db, store, conversations, documents,
                                                      directory, services.profile),
        directory, mailer)
    services.schema_upgrade = upgraded
    services.summaries = warmer
    runner.handlers.update(job_table(services))
    return services


def build_trust_space(config: Config) -> TrustSpace:
    """The trust space of ``config``: local trust file, national whitelist, resolver."""
    t = config.trust
    resolver: Resolver = (resolver_from_zone_file(config.path(Path(t.static_zone_file)))
                          if t.static_zone_file else DnsResolver(timeout=t.dns_timeout))
    return TrustSpaceService(
        local_file=config.path(t.local_file),
        last_good_file=config.path(t.last_good_file),
        whitelist_file=config.path(Path(t.whitelist_file)) if t.whitelist_file else None,
        whitelist_url=t.whitelist_url,
        refresh_seconds=t.refresh_seconds,
        resolver=resolver,
    )
