"""The running server: services, listeners and background workers, with a clean shutdown.

``run(config, listen)`` opens the services, starts every listener asked for (logging one line
per listener, with the bound port, so port 0 can be used), starts the background workers, then
waits for ``stop`` (SIGTERM/SIGINT in ``mssante serve``) and shuts down within a few seconds:
listeners stop accepting, open sessions are closed, in-flight commits finish, the database is
closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from dossier_bridge.api import MAX_PATIENT_UPLOAD, DocumentFilingsView, PatientDocumentsView
from dossier_bridge.fhir.app import FhirDeps, make_fhir_app
from dossier_bridge.fhir.provide import Provider
from dossier_bridge.profile_store import PatientProfileView
from dossier_bridge.tokens import TokenRepository
from mailserver import metrics
from mailserver.admin import AdminDeps, start_admin
from mailserver.app import (
    Services,
    audit_purge,
    blob_sweep,
    finished_purge,
    inactivity_sweep,
    open_services,
    tombstone_prune,
)
from mailserver.config import Config, ListenConfig, parse_hostport
from mailserver.directory.archive_job import ArchiveJob
from mailserver.directory.opening import OpeningJob
from mailserver.export.archive import AccountExport
from mailserver.export_root import build_account_export
from mailserver.imap.server import start_imap
from mailserver.listener import BalancedServer, WorkerLoad
from mailserver.outbound.queue import OutboundQueue
from mailserver.outbound.worker import start_queue_workers
from mailserver.smtp.server import start_smtp
from mailserver.store.pg_events import PgEventListener
from mailserver.store.queue import queue_depth
from mailserver.store.webmail_queries import WebmailQueries
from mailserver.tls import server_context
from mailserver.trust.space import TrustSpaceService
from webmail.app import start_http
from webmail.deps import WebmailDeps, WebmailSettings
from webmail.store import WebmailStore

__all__ = ["Runtime", "run", "start_runtime", "webmail_deps", "account_export", "admin_deps"]

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    config: Config
    services: Services
    tls: ssl.SSLContext
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    closers: list[Closer] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    sockets: dict[str, socket.socket] = field(default_factory=dict)
    """Listening sockets inherited from ``serve --workers``'s parent, by listener name."""
    load: WorkerLoad | None = None
    """This worker's slot in the parent's connection table (``serve --workers``): the mail
    listeners then accept fairly (:mod:`mailserver.listener`)."""

    def listening(self, name: str, server: asyncio.Server | BalancedServer) -> None:
        sock = server.sockets[0].getsockname()
        self.ports[name] = (sock[0], sock[1])
        log.info("listening: %s %s:%d", name, sock[0], sock[1])
        print(f"listening: {name} {sock[0]}:{sock[1]}", flush=True)

        async def close() -> None:
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 3)
            except TimeoutError:
                pass

        self.closers.append(close)

    async def close(self) -> None:
        self.stop.set()
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:  # noqa: BLE001
                log.exception("runtime: error while closing")
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.services.close()


async def _start_extensions(rt: Runtime, listen: ListenConfig) -> None:
    """Front ends and workers that live in other packages."""
    imap = rt.services.imap_backend()
    if listen.imap:
        host, port = parse_hostport(listen.imap)
        rt.listening("imap", await start_imap(imap, host, port, rt.tls, implicit_tls=False,
                                              sock=rt.sockets.get("imap"), load=rt.load))
    if listen.imaps:
        host, port = parse_hostport(listen.imaps)
        rt.listening("imaps", await start_imap(imap, host, port, rt.tls, implicit_tls=True,
                                               sock=rt.sockets.get("imaps"), load=rt.load))
    if listen.http:
        # The web app announces the mail listeners to clients (autoconfig): give it the
        # addresses actually bound (port 0 resolved).
        actual = {name: f"{h}:{p}" for name, (h, p) in rt.ports.items()
                  if name in ("smtp", "submission", "submissions", "imap", "imaps")}
        rt.services.config = dataclasses.replace(
            rt.services.config, listen=dataclasses.replace(listen, **actual))

        host, port = parse_hostport(listen.http)
        runner, bound = await start_http(webmail_deps(rt.services), host, port,
                                         mounts={"/fhir": _fhir_app(rt.services)},
                                         sock=rt.sockets.get("http"))
        rt.ports["http"] = bound
        log.info("listening: http %s:%d", *bound)
        print(f"listening: http {bound[0]}:{bound[1]}", flush=True)
        rt.closers.append(runner.cleanup)
    if listen.metrics:
        host, port = parse_hostport(listen.metrics)
        admin, bound = await start_admin(admin_deps(rt.services), host, port,
                                         sock=rt.sockets.get("metrics"))
        rt.ports["metrics"] = bound
        log.info("listening: metrics %s:%d", *bound)
        print(f"listening: metrics {bound[0]}:{bound[1]}", flush=True)
        rt.closers.append(admin.cleanup)
    _start_workers(rt)


def _start_workers(rt: Runtime) -> None:
    """The job runner, the automatic opening of accounts, the archive deletions and purges,
    the outbound queue workers and the trust-list refresh."""
    services = rt.services
    rt.tasks.append(asyncio.create_task(services.runner.run(rt.stop), name="jobs"))
    if not services.db.is_sqlite:  # other processes' mailbox changes (LISTEN/NOTIFY)
        listener = PgEventListener(services.db.url, services.events)
        rt.tasks.append(asyncio.create_task(listener.run(rt.stop), name="pg-events"))
    rt.tasks.append(asyncio.create_task(inactivity_sweep(services).schedule(),
                                        name="inactivity-schedule"))
    rt.tasks.append(asyncio.create_task(audit_purge(services).schedule(),
                                        name="audit-purge-schedule"))
    rt.tasks.append(asyncio.create_task(finished_purge(services).schedule(
        services.config.jobs.purge_interval_seconds), name="finished-purge-schedule"))
    rt.tasks.append(asyncio.create_task(blob_sweep(services).schedule(
        services.config.store.orphan_sweep_seconds), name="blob-sweep-schedule"))
    rt.tasks.append(asyncio.create_task(tombstone_prune(services).schedule(
        services.config.imap.vanished_prune_seconds), name="vanished-prune-schedule"))
    rt.tasks.append(asyncio.create_task(OpeningJob(services.directory).run(rt.stop),
                                        name="open-due"))
    archive_job = ArchiveJob(services.closing,
                             interval=services.config.lifecycle.archive_job_seconds)
    rt.tasks.append(asyncio.create_task(archive_job.run(rt.stop), name="archives"))
    queue, trust = services.delivery.outbound, services.delivery.trust
    if isinstance(queue, OutboundQueue) and isinstance(trust, TrustSpaceService):
        rt.tasks.extend(start_queue_workers(services.config, queue, trust,
                                            services.system_mail.report, rt.stop))
        rt.tasks.append(asyncio.create_task(trust.run(rt.stop), name="trust-refresh"))


def _fhir_app(services: Services) -> web.Application:
    """The IHE MHD and medical-profile sub-application (dossier_bridge.fhir), served beside the
    webmail."""
    documents = services.documents
    return make_fhir_app(FhirDeps(
        documents=documents, directory=services.directory, tokens=TokenRepository(services.db),
        provider=Provider(documents, services.directory.by_ins),
        trusted_proxies=services.config.webmail.trusted_proxies, profile=services.profile))


def _inbound_tls(config: Config, services: Services, default: ssl.SSLContext
                 ) -> ssl.SSLContext | Callable[[], ssl.SSLContext]:
    """The port-25 context: asks for client certificates from the trust list's CAs."""
    trust = services.trust
    if not isinstance(trust, TrustSpaceService):
        return default
    cert, key = config.path(config.tls.cert_file), config.path(config.tls.key_file)
    return lambda: trust.server_context(cert, key, require_client_cert=False)


async def start_runtime(config: Config, listen: ListenConfig, *,
                        services: Services | None = None,
                        sockets: dict[str, socket.socket] | None = None,
                        load: WorkerLoad | None = None) -> Runtime:
    services = services or await open_services(config)
    tls = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file),
                         extra=[(config.path(config.tls.ec_cert_file),
                                 config.path(config.tls.ec_key_file))])
    rt = Runtime(config, services, tls, sockets=dict(sockets or {}), load=load)
    try:
        if listen.submission:
            host, port = parse_hostport(listen.submission)
            rt.listening("submission", await start_smtp(
                config, services.directory, services.delivery, role="submission",
                host=host, port=port, tls=tls, sock=rt.sockets.get("submission"), load=rt.load))
        if listen.submissions:
            host, port = parse_hostport(listen.submissions)
            rt.listening("submissions", await start_smtp(
                config, services.directory, services.delivery, role="submission",
                host=host, port=port, tls=tls, implicit_tls=True,
                sock=rt.sockets.get("submissions"), load=rt.load))
        if listen.smtp:
            host, port = parse_hostport(listen.smtp)
            rt.listening("smtp", await start_smtp(
                config, services.directory, services.delivery, role="inbound",
                host=host, port=port, tls=_inbound_tls(config, services, tls),
                reports=services.system_mail.report, sock=rt.sockets.get("smtp"),
                load=rt.load))
        await _start_extensions(rt, listen)
    except BaseException:
        await rt.close()
        raise
    return rt


def run_loop(config: Config, main: Coroutine[Any, Any, None]) -> None:
    """Run the server's main coroutine on the configured event loop (``[server]
    event_loop``): uvloop unless asked otherwise or not installed."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if config.server.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: running on asyncio's event loop")
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


async def run(config: Config, listen: ListenConfig,
              on_ready: Callable[[Runtime], None] | None = None, *,
              sockets: dict[str, socket.socket] | None = None,
              load: WorkerLoad | None = None) -> None:
    """Serve until SIGTERM/SIGINT (on ``sockets`` already listening, if given)."""
    import signal

    rt = await start_runtime(config, listen, sockets=sockets, load=load)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, rt.stop.set)
    if on_ready:
        on_ready(rt)
    print("ready", flush=True)
    try:
        await rt.stop.wait()
        log.info("shutting down")
    finally:
        await asyncio.wait_for(rt.close(), 9)
        log.info("stopped")


def webmail_deps(services: Services) -> WebmailDeps:
    """The webmail's collaborators, taken from the services (read at call time: the runtime
    rewrites ``[listen]`` with the bound ports first)."""
    config = services.config
    return WebmailDeps(
        settings=WebmailSettings(webmail=config.webmail, domain=config.domain,
                                 patient_domain=config.patient_domain,
                                 hostname=config.hostname, extra_domains=config.extra_domains,
                                 listen=config.listen,
                                 lockout_seconds=config.auth.lockout_seconds),
        directory=services.directory, audit=services.audit, store=services.store,
        conversations=services.conversations, delivery=services.delivery,
        queries=WebmailQueries(services.db), webstore=WebmailStore(services.db, services.keys),
        receipts=services.system_mail, mailer=services.mailer,
        documents=DocumentFilingsView(services.documents),
        patient_documents=PatientDocumentsView(services.documents, services.directory),
        max_document_upload=MAX_PATIENT_UPLOAD, profile=PatientProfileView(services.profile),
        export=account_export(services),
        closing=services.closing, prepared=services.prepared_exports)


def account_export(services: Services) -> AccountExport:
    """The patient's data export (the webmail's ``/api/export`` and ``mssante accounts
    export``): the mail store, the documents and their access log, the profile."""
    return build_account_export(services.db, services.store, services.conversations,
                                services.documents, services.directory, services.profile)



def admin_deps(services: Services) -> AdminDeps:
    """The admin listener's readiness checks and the gauges it reads at each scrape."""
    blobs = services.blobs
    webstore = WebmailStore(services.db, services.keys)
    idle = timedelta(seconds=services.config.webmail.session_idle_seconds)

    async def blobs_writable() -> None:  # the folder takes a file; S3: HeadBucket answers
        await blobs.check_ready()

    async def queue() -> None:
        count, oldest = await queue_depth(services.db)
        metrics.QUEUE_DEPTH.set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        metrics.QUEUE_OLDEST_SECONDS.set(max(0.0, age))

    async def sessions() -> None:
        since = datetime.now(UTC) - idle
        metrics.WEBMAIL_SESSIONS.set(await webstore.active_sessions(since))

    return AdminDeps(checks={"database": services.db.ping, "blobs": blobs_writable},
                     refresh=(queue, sessions))
