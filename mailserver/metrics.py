"""The server's metrics, in the Prometheus format (prometheus-client), in one registry.

Theory of operation: the metrics are module-level objects of one :data:`REGISTRY` (not the
library's global one), so an embedding application or a test sees only ours. Code that counts
something imports this module and calls the metric; nothing else imports prometheus-client
except the admin listener, which serves :func:`exposition`. Values that live in the database
(queue depth, oldest queued message, open webmail sessions) are not counted in memory: the
admin listener reads them at each scrape and stores them in :data:`QUEUE_DEPTH` and friends.

Labels hold bounded values only: reply reasons, result kinds, trust-space domains, route
templates, document labels, integration error codes. Never an address, a patient identifier
or a subject.

Each process counts for itself. Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set
before this module is imported: the command starts itself again with it) every worker writes
its values to files there and :func:`exposition` sums the workers (prometheus-client's
multi-process mode: counters and histograms summed, open connections summed over live workers,
the scrape-time gauges the most recent value; no process/GC collectors in that mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

__all__ = [
    "REGISTRY", "CONTENT_TYPE", "exposition", "SMTP_ACCEPTED", "SMTP_REFUSED",
    "SMTP_ACCEPT_SECONDS",
    "QUEUE_DEPTH", "QUEUE_OLDEST_SECONDS", "DELIVERY_ATTEMPTS", "CONNECTIONS_OPEN",
    "WEBMAIL_SESSIONS", "AUTH_FAILURES", "FILED_DOCUMENTS", "FILING_MESSAGES",
    "HTTP_SECONDS", "STORE_BATCH_OPS", "MULTIPROCESS", "worker_gone",
]

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SMTP_ACCEPTED = Counter(
    "mssante_smtp_messages_accepted", "Messages accepted (250 after DATA), by listener role.",
    ["role"], registry=REGISTRY)
SMTP_REFUSED = Counter(
    "mssante_smtp_refusals",
    "Refused SMTP transactions: recipients at RCPT, messages at DATA; by role, stage and "
    "reason (the reply's name, e.g. UNKNOWN_RECIPIENT, STORAGE_FULL).",
    ["role", "stage", "reason"], registry=REGISTRY)
SMTP_ACCEPT_SECONDS = Histogram(
    "mssante_smtp_accept_seconds",
    "From the end of DATA to the reply (checks, storage, group commit), by role.",
    ["role"], buckets=_LATENCY, registry=REGISTRY)
QUEUE_DEPTH = Gauge(
    "mssante_queue_messages", "Messages in the outbound queue not yet final (read at scrape).",
    multiprocess_mode="mostrecent", registry=REGISTRY)
QUEUE_OLDEST_SECONDS = Gauge(
    "mssante_queue_oldest_age_seconds",
    "Age of the oldest message still in the outbound queue, 0 when empty (read at scrape).",
    multiprocess_mode="mostrecent", registry=REGISTRY)
DELIVERY_ATTEMPTS = Counter(
    "mssante_delivery_attempts",
    "Outbound delivery attempts per recipient, by peer domain and result "
    "(delivered, deferred, failed).", ["domain", "result"], registry=REGISTRY)
CONNECTIONS_OPEN = Gauge(
    "mssante_connections_open",
    "Open client connections by protocol (imap: IMAP sessions; smtp).", ["protocol"],
    multiprocess_mode="livesum", registry=REGISTRY)
WEBMAIL_SESSIONS = Gauge(
    "mssante_webmail_sessions", "Webmail sessions active within the idle timeout (read at "
    "scrape).", multiprocess_mode="mostrecent", registry=REGISTRY)
AUTH_FAILURES = Counter(
    "mssante_auth_failures",
    "Refused logins (any protocol): result=invalid (wrong credentials) or locked (refused "
    "unchecked, over the attempt limit).", ["result"], registry=REGISTRY)
FILED_DOCUMENTS = Counter(
    "mssante_filed_documents", "Documents filed in patients' document stores, by label.",
    ["label"], registry=REGISTRY)
FILING_MESSAGES = Counter(
    "mssante_filing_messages",
    "Messages handled by the filer, by status (filed, partial, not_filed, no_documents) and "
    "integration error code (empty when none).", ["status", "error_code"], registry=REGISTRY)
HTTP_SECONDS = Histogram(
    "mssante_http_request_seconds",
    "Webmail and /fhir request latency, by route template, method and status class.",
    ["route", "method", "status"], buckets=_LATENCY, registry=REGISTRY)
STORE_BATCH_OPS = Histogram(
    "mssante_store_commit_batch_ops", "Write operations per group-committed transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=REGISTRY)


def exposition() -> bytes:
    """The registry in the Prometheus text format (every worker's, summed, under
    ``serve --workers``)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_gone(pid: int) -> None:
    """A worker process ended: its live gauges (open connections) stop counting."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
