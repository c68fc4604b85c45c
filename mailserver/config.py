"""Configuration: a TOML file read into frozen dataclasses.

``load(path)`` reads ``<data-dir>/mssante.toml``; every problem found is reported at once in a
single :class:`~mailserver.errors.ConfigError`. Components receive their own slice as a
constructor argument; there are no module globals. Relative paths are resolved against the data
directory. Secrets (the master key) live in files referenced here, never inline.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailserver.errors import ConfigError

__all__ = [
    "Config",
    "AuditConfig",
    "JobsConfig",
    "StoreConfig",
    "TlsConfig",
    "SmtpConfig",
    "AuthConfig",
    "ImapConfig",
    "DkimConfig",
    "QueueConfig",
    "WebmailConfig",
    "TrustConfig",
    "ListenConfig",
    "LifecycleConfig",
    "LoggingConfig",
    "InactivityConfig",
    "load",
    "dump",
    "parse_hostport",
    "CONFIG_NAME",
]

CONFIG_NAME = "mssante.toml"
MB = 1024 * 1024


@dataclass(frozen=True)
class StoreConfig:
    database_url: str = ""
    """SQLAlchemy async URL; empty means SQLite at <data-dir>/mssante.db."""
    blob_dir: Path = Path("blobs")
    """Where encrypted blobs live (local files)."""
    master_key_file: Path = Path("keys/master.key")
    """The master key (key-encryption key); mode 0600."""
    inline_max: int = 128 * 1024
    """Messages up to this size (bytes) are stored inside the database row; larger ones as blobs."""
    group_commit_max: int = 256
    """Most write operations folded into one transaction."""
    key_cache_size: int = 10_000
    """Unwrapped mailbox data keys kept in memory."""
    orphan_blob_margin_seconds: float = 3600.0
    """Blob files no row names are removed once older than this (never a delivery's own)."""
    orphan_sweep_seconds: float = 6 * 3600.0
    """How often the orphan blob sweep runs (job ``sweep_blobs``)."""
    blob_url: str = ""
    """``s3://bucket/prefix``: blobs in that S3 bucket instead of ``blob_dir``."""
    s3_endpoint: str = ""
    """``http://host:port`` of the S3 gateway (SeaweedFS, MinIO...); empty: AWS."""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    """Empty: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from the environment (preferred:
    no secret in this file)."""
    s3_secret_access_key: str = ""
    s3_multipart_threshold: int = 8 * MB
    """Blobs over this size go up in parts of this size (at least 5 MiB)."""

    @property
    def s3_location(self) -> tuple[str, str] | None:
        """(bucket, prefix) of ``blob_url``, or None for local blobs."""
        if not self.blob_url:
            return None
        bucket, _, prefix = self.blob_url.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path = Path("tls/server.pem")
    key_file: Path = Path("tls/server.key")
    ca_file: Path = Path("tls/ca.pem")
    """The CA that signed our certificate (development CA in the demo)."""
    ca_key_file: Path = Path("tls/ca.key")
    ec_cert_file: Path = Path("tls/server-ec.pem")
    """An optional ECDSA certificate offered beside the RSA one to mail and web clients
    (cheaper handshakes); the inter-operator listener presents RSA-2048 only."""
    ec_key_file: Path = Path("tls/server-ec.key")


@dataclass(frozen=True)
class AuthConfig:
    fail_delay: float = 1.0
    """Base delay (seconds) after a failed authentication; doubles per failure."""
    max_fail_delay: float = 8.0
    lockout_threshold: int = 5
    """Consecutive failures before a temporary lockout."""
    lockout_seconds: int = 300
    cache_seconds: int = 300
    """How long a verified password is remembered (hash of it, in memory) to skip Argon2."""


@dataclass(frozen=True)
class SmtpConfig:
    max_message_size: int = 25 * MB
    """RFC 1870 SIZE limit, and the national 25 MB limit for patients."""
    idle_timeout: float = 300.0
    """RFC 5321 4.5.3.2.7: at least 5 minutes."""
    max_bad_commands: int = 20
    max_recipients: int = 100
    max_header_size: int = 100 * 1024
    """Largest header section of a message (bytes up to the first empty line, or the whole
    message when it has none); larger is refused with 552 5.3.4 after DATA (Postfix cuts
    headers at 100 KB, ``header_size_limit``). 0 means no limit."""
    max_connections_per_address: int = 50
    """Simultaneous connections from one client address, per SMTP listener (inbound,
    submission, submissions); over it: 421 4.7.0 and close (Postfix
    ``smtpd_client_connection_count_limit``). 0 means no limit."""
    hostname: str = ""
    """Name announced in the greeting; defaults to the domain."""
    postmaster: str = ""
    """Operator mailbox that receives mail for ``postmaster`` (RFC 5321 4.5.1: ``<postmaster>``
    and ``postmaster@`` any local domain, case-insensitive); a local professional address,
    default ``postmaster@<domain>`` (create that mailbox with ``mssante org add``)."""


@dataclass(frozen=True)
class ImapConfig:
    idle_timeout: float = 1800.0
    """RFC 3501 5.4: at least 30 minutes."""
    max_literal: int = 40 * MB
    max_connections_per_address: int = 50
    """Simultaneous connections from one client address, per IMAP listener (IMAP, IMAPS);
    over it: ``* BYE Too many connections`` and close. 0 means no limit."""
    vanished_keep: int = 10_000
    """Expunged-UID tombstones kept per folder for QRESYNC (job ``prune_vanished`` drops the
    older ones; a client resynchronising from before them is told every UID it knew that is
    gone, RFC 7162 3.2.5.2)."""
    vanished_prune_seconds: float = 24 * 3600.0
    """How often job ``prune_vanished`` runs."""


@dataclass(frozen=True)
class DkimConfig:
    selector: str = "mss1"
    key_file: Path = Path("dkim/mss1.rsa.pem")
    ed25519_key_file: Path = Path("dkim/mss1.ed25519.pem")
    failure_policy: str = "mark"
    """What to do with inbound mail whose signature fails: "mark" or "reject"."""


@dataclass(frozen=True)
class QueueConfig:
    lifetime_seconds: int = 5 * 24 * 3600
    delay_warning_seconds: int = 4 * 3600
    workers: int = 4
    base_retry_seconds: float = 60.0
    max_retry_seconds: float = 3600.0
    lease_seconds: float = 30.0
    """How long a claimed queue entry is reserved for its worker; renewed every third of it
    while the worker delivers, so a crashed worker's messages are taken again within one lease."""
    poll_seconds: float = 5.0
    """How often idle queue workers look for due messages."""
    connect_timeout: float = 30.0
    """Seconds allowed to connect to a peer and complete each SMTP command."""


@dataclass(frozen=True)
class TrustConfig:
    local_file: Path = Path("trust/local.json")
    """Local trust entries (``mssante trust add``): domains, certificate DNs, CAs, next hops."""
    whitelist_file: str = ""
    """The national whitelist (``ListeBlancheMSSante`` XML, optionally gzip) as a file path."""
    whitelist_url: str = ""
    """... or as an HTTPS URL, fetched every ``refresh_seconds``."""
    refresh_seconds: int = 6 * 3600
    last_good_file: Path = Path("trust/whitelist.last-good.xml")
    """The last whitelist that parsed, kept when a refresh fails or is malformed."""
    require_client_cert: bool = True
    """Inbound SMTP between operators requires a client certificate whose subject DN is listed
    for the envelope sender's domain, whenever the trust list names at least one domain."""
    static_zone_file: str = ""
    """JSON "local zone" answering MX/A/AAAA/TXT lookups instead of DNS (tests, labs)."""
    dns_timeout: float = 5.0


@dataclass(frozen=True)
class WebmailConfig:
    secure_cookies: bool = True
    """False only for the plain-HTTP localhost demo."""
    session_idle_seconds: int = 1800
    outbox_dir: Path = Path("outbox")
    """Where mail to patients' personal addresses goes in the demo (no relay configured)."""
    relay: str = ""
    """host:port of the relay for notifications and one-time codes; empty = outbox folder."""
    base_url: str = ""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses of reverse proxies in front of the webmail: for requests from them, the
    client address (for rate limits and lockouts) is read from X-Forwarded-For."""


@dataclass(frozen=True)
class LifecycleConfig:
    deletion_delay_days: int = 0
    """Days between an archive deletion request and its execution (the operator's checks;
    at most 90: the request must be honoured within 3 months)."""
    archive_job_seconds: float = 300.0
    """How often ``mssante serve`` runs the due archive deletions and purges."""


@dataclass(frozen=True)
class ExportConfig:
    background_threshold_mb: int = 100
    """From this size (messages and documents, in MB) the export page offers to prepare the
    archive in the background, with a notice when it is ready, rather than streaming it."""
    ready_days: int = 7
    """How long a prepared archive stays downloadable before it is deleted."""
    dir: Path = Path("exports")
    """Where prepared archives are kept, sealed (under the data directory)."""


@dataclass(frozen=True)
class AuditConfig:
    retention_days: int = 183
    """Days the audit trail of mailbox actions is kept (six months), then purged."""
    purge_interval_seconds: int = 86400
    """How often the purge job runs."""


@dataclass(frozen=True)
class JobsConfig:
    keep_done_days: int = 7
    """Days finished jobs and finished outbound queue messages (delivered or bounced) are kept
    (``mssante queue list --all`` shows them), then deleted."""
    purge_interval_seconds: int = 3600
    """How often the purge job runs."""


@dataclass(frozen=True)
class ListenConfig:
    smtp: str = ""
    submission: str = ""
    submissions: str = ""
    """Submission over implicit TLS (RFC 8314, the port-465 role)."""
    imap: str = ""
    imaps: str = ""
    http: str = ""
    metrics: str = ""
    """The admin listener (``/metrics``, ``/healthz``, ``/readyz``); never the HTTP port."""


@dataclass(frozen=True)
class InactivityConfig:
    """Professional mailboxes unused for long (patients follow their lifecycle instead)."""

    enabled: bool = True
    notice_days: int = 335
    """Days without login before the notice (about 11 months)."""
    mark_days: int = 365
    """Days without login before the mailbox is marked for deletion (12 months)..."""
    min_notice_days: int = 30
    """... and at least this many days after the notice (no mark without a warning)."""
    grace_days: int = 30
    """Days between the mark and the deletion date shown (the deletion itself is manual)."""
    interval_seconds: int = 86400
    """How often the scheduled job runs."""


@dataclass(frozen=True)
class ServerConfig:
    event_loop: str = "uvloop"
    """``"uvloop"`` (libuv's loop: less CPU for the same connections, the default) or
    ``"asyncio"`` (the standard library's); ``mssante serve`` falls back to asyncio with a
    warning when uvloop cannot be imported."""


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"
    """"text" (one readable line per record) or "json" (one JSON object per line)."""


@dataclass(frozen=True)
class Config:
    data_dir: Path
    domain: str
    """The operator's professional domain (e.g. ``hopital.mssante.fr``)."""
    patient_domain: str = ""
    """Patients' domain; defaults to ``patient.<domain>``."""
    store: StoreConfig = field(default_factory=StoreConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    webmail: WebmailConfig = field(default_factory=WebmailConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    inactivity: InactivityConfig = field(default_factory=InactivityConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    extra_domains: tuple[str, ...] = ()
    """Other professional domains hosted here."""

    def __post_init__(self) -> None:
        if not self.patient_domain:
            object.__setattr__(self, "patient_domain", f"patient.{self.domain}")

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the data directory."""
        return p if p.is_absolute() else self.data_dir / p

    @property
    def database_url(self) -> str:
        if self.store.database_url:
            return self.store.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'mssante.db'}"

    @property
    def local_domains(self) -> frozenset[str]:
        return frozenset({self.domain, self.patient_domain, *self.extra_domains})

    @property
    def hostname(self) -> str:
        return self.smtp.hostname or self.domain

    @property
    def postmaster(self) -> str:
        """The mailbox mail for postmaster goes to (``[smtp] postmaster``)."""
        return self.smtp.postmaster.strip().lower() or f"postmaster@{self.domain}"


_SECTIONS: dict[str, type[Any]] = {
    "store": StoreConfig,
    "tls": TlsConfig,
    "auth": AuthConfig,
    "smtp": SmtpConfig,
    "imap": ImapConfig,
    "dkim": DkimConfig,
    "queue": QueueConfig,
    "webmail": WebmailConfig,
    "trust": TrustConfig,
    "listen": ListenConfig,
    "lifecycle": LifecycleConfig,
    "logging": LoggingConfig,
    "inactivity": InactivityConfig,
    "export": ExportConfig,
    "audit": AuditConfig,
    "jobs": JobsConfig,
    "server": ServerConfig,
}


def _build_section(name: str, cls: type[Any], raw: Any, problems: list[str]) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table")
        return cls()
    kwargs: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in raw.items():
        if key not in fields:
            problems.append(f"[{name}] unknown key {key!r}")
            continue
        default = getattr(cls(), key)
        if isinstance(default, Path):
            if not isinstance(value, str):
                problems.append(f"[{name}] {key} must be a path string")
                continue
            value = Path(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(f"[{name}] {key} must be true or false")
                continue
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"[{name}] {key} must be a number")
                continue
            if value < 0:
                problems.append(f"[{name}] {key} must not be negative")
                continue
            if isinstance(default, int) and not isinstance(value, int):
                problems.append(f"[{name}] {key} must be an integer")
                continue
        elif isinstance(default, str) and not isinstance(value, str):
            problems.append(f"[{name}] {key} must be a string")
            continue
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"[{name}] {key} must be a list of strings")
                continue
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def parse_hostport(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` accepted)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def from_dict(data_dir: Path, raw: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, reporting all problems at once."""
    problems: list[str] = []
    domain = raw.get("domain")
    if not isinstance(domain, str) or "." not in domain:
        problems.append("domain must be a DNS name such as 'hopital.mssante.fr'")
        domain = "invalid.invalid"
    patient_domain = raw.get("patient_domain", "")
    if not isinstance(patient_domain, str):
        problems.append("patient_domain must be a string")
        patient_domain = ""
    extra = raw.get("extra_domains", [])
    if not isinstance(extra, list) or not all(isinstance(d, str) for d in extra):
        problems.append("extra_domains must be a list of strings")
        extra = []
    sections = {name: _build_section(name, cls, raw.get(name), problems)
                for name, cls in _SECTIONS.items()}
    for key in raw:
        if key not in _SECTIONS and key not in {"domain", "patient_domain", "extra_domains"}:
            problems.append(f"unknown top-level key {key!r}")
    listen = sections["listen"]
    for name in ("smtp", "submission", "submissions", "imap", "imaps", "http", "metrics"):
        value = getattr(listen, name)
        if value:
            try:
                parse_hostport(value)
            except ValueError as exc:
                problems.append(f"[listen] {name}: {exc}")
    if listen.metrics and listen.metrics == listen.http:
        problems.append("[listen] metrics must not be the webmail's http address")
    inactive = sections["inactivity"]
    if inactive.mark_days <= inactive.notice_days or inactive.interval_seconds < 60:
        problems.append("[inactivity] mark_days must exceed notice_days; interval_seconds >= 60")
    audit = sections["audit"]
    if audit.retention_days < 1 or audit.purge_interval_seconds < 60:
        problems.append("[audit] retention_days >= 1; purge_interval_seconds >= 60")
    imap = sections["imap"]
    if imap.vanished_keep < 1 or imap.vanished_prune_seconds < 60:
        problems.append("[imap] vanished_keep >= 1; vanished_prune_seconds >= 60")
    jobs = sections["jobs"]
    if jobs.keep_done_days < 1 or jobs.purge_interval_seconds < 60:
        problems.append("[jobs] keep_done_days >= 1; purge_interval_seconds >= 60")
    if sections["server"].event_loop not in {"uvloop", "asyncio"}:
        problems.append("[server] event_loop must be 'uvloop' or 'asyncio'")
    if sections["logging"].format not in {"text", "json"}:
        problems.append("[logging] format must be 'text' or 'json'")
    postmaster = sections["smtp"].postmaster.strip().lower()
    if postmaster:
        local, at, pm_domain = postmaster.rpartition("@")
        hosted = {domain.lower(), *(d.lower() for d in extra)}
        if not local or not at or pm_domain not in hosted:
            problems.append("[smtp] postmaster must be a mailbox of domain or extra_domains")
    if sections["dkim"].failure_policy not in {"mark", "reject"}:
        problems.append("[dkim] failure_policy must be 'mark' or 'reject'")
    trust = sections["trust"]
    if trust.whitelist_file and trust.whitelist_url:
        problems.append("[trust] give whitelist_file or whitelist_url, not both")
    if trust.whitelist_url and not trust.whitelist_url.startswith("https://"):
        problems.append("[trust] whitelist_url must be an https:// URL")
    if trust.refresh_seconds < 60:
        problems.append("[trust] refresh_seconds must be at least 60")
    if sections["lifecycle"].deletion_delay_days > 90:
        problems.append("[lifecycle] deletion_delay_days must be at most 90 (3 months)")
    problems += _store_problems(sections["store"])
    if sections["export"].background_threshold_mb < 0 or sections["export"].ready_days < 1:
        problems.append("[export] background_threshold_mb must be >= 0, ready_days >= 1")
    if problems:
        raise ConfigError(problems)
    return Config(
        data_dir=data_dir,
        domain=domain.lower(),
        patient_domain=patient_domain.lower(),
        extra_domains=tuple(d.lower() for d in extra),
        **sections,
    )


def _store_problems(store: StoreConfig) -> list[str]:
    problems = []
    location = store.s3_location
    if location is not None:
        bucket = location[0]
        if not store.blob_url.startswith("s3://") or not re.fullmatch(
                r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            problems.append('[store] blob_url must look like "s3://bucket/prefix"')
        if store.s3_endpoint and not re.fullmatch(r"https?://[^/\s]+/?", store.s3_endpoint):
            problems.append('[store] s3_endpoint must look like "http://host:port"')
        if store.s3_multipart_threshold < 5 * MB:
            problems.append("[store] s3_multipart_threshold must be at least 5 MiB (5242880)")
        if bool(store.s3_access_key_id) != bool(store.s3_secret_access_key):
            problems.append("[store] give both s3_access_key_id and s3_secret_access_key")
    return problems


def load(path: Path) -> Config:
    """Read a configuration file. The data directory is the file's folder."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (run 'mssante init' first)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    return from_dict(path.parent.resolve(), raw)


def dump(domain: str, patient_domain: str = "", database_url: str = "") -> str:
    """The initial configuration file written by ``mssante init``."""
    lines = [
        "# mssante configuration. Paths are relative to this file's folder.",
        f'domain = "{domain}"',
    ]
    if patient_domain:
        lines.append(f'patient_domain = "{patient_domain}"')
    lines += [
        "",
        "[store]",
        f'database_url = "{database_url}"' if database_url else
        '# database_url = "postgresql+asyncpg://user@127.0.0.1/mssante"  # default: SQLite here',
        'blob_dir = "blobs"',
        '# blob_url = "s3://mssante-blobs/prod"  # blobs in an S3 bucket instead of blob_dir',
        '# s3_endpoint = "http://127.0.0.1:8333"  # credentials: AWS_ACCESS_KEY_ID/..._SECRET_...',
        'master_key_file = "keys/master.key"',
        "",
        "[smtp]",
        f"max_message_size = {25 * MB}",
        "# Mail for postmaster (RFC 5321 4.5.1) goes to this mailbox; create it with",
        "# 'mssante org add' or name an existing one.",
        f'# postmaster = "postmaster@{domain}"',
        "# max_header_size = 102400          # bytes of header section; larger: 552 5.3.4",
        "# max_connections_per_address = 50  # per SMTP listener; more: 421 4.7.0",
        "",
        "[imap]",
        "# max_connections_per_address = 50  # per IMAP listener; more: * BYE",
        "",
        "[auth]",
        "lockout_threshold = 5",
        "lockout_seconds = 300",
        "",
        "[trust]",
        "# Operators of the trust space: see 'mssante trust add' (stored in trust/local.json).",
        '# whitelist_url = "https://listeblanche.mssante.fr/..."  # or whitelist_file = "..."',
        "# refresh_seconds = 21600",
        "# Between operators a client certificate listed for the sender's domain is required.",
        "require_client_cert = true",
        "",
        "[lifecycle]",
        "# Days before an archive deletion request is carried out (operator checks, max 90).",
        "# deletion_delay_days = 0",
        "",
        "[export]",
        "# Spaces over this size (MB) get their archive prepared in the background.",
        "# background_threshold_mb = 100",
        "# ready_days = 7",
        "",
        "[listen]",
        '# smtp = "0.0.0.0:25"',
        '# submission = "0.0.0.0:587"',
        '# submissions = "0.0.0.0:465"',
        '# imap = "0.0.0.0:143"',
        '# imaps = "0.0.0.0:993"',
        '# http = "0.0.0.0:8080"',
        '# metrics = "127.0.0.1:9187"  # /metrics, /healthz, /readyz: admin network only',
        "",
        "[logging]",
        '# format = "json"  # one JSON object per line on stderr (default "text")',
        "",
    ]
    return "\n".join(lines)
