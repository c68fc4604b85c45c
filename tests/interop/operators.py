"""Helpers running several instances of our server as operators of one trust space."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from cryptography import x509

from mailserver.app import Services, open_services
from mailserver.cli.setup import init_data_dir
from mailserver.config import AuthConfig, Config, ListenConfig, QueueConfig, load
from mailserver.dkim import signing as dkim
from mailserver.runtime import Runtime, start_runtime
from mailserver.trust.space import TrustSpaceService
from mailserver.trust.trustlist import NextHop, load_local, save_local

PASSWORD = "correct-horse-battery"  # noqa: S105 - test credential
RPPS = ("10003244273", "10000000017", "10000000025", "10000000033")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subject_dn(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificates(cert_pem.read_bytes())[0]
    return cert.subject.rfc4514_string()


def add_zone_records(zone_file: Path, records: list[tuple[str, str]]) -> None:
    zone = json.loads(zone_file.read_text()) if zone_file.exists() else {}
    for owner, value in records:
        zone[owner.rstrip(".")] = {"TXT": [value]}
    zone_file.write_text(json.dumps(zone))


@dataclass
class Operator:
    domain: str
    data_dir: Path
    config: Config
    services: Services
    runtime: Runtime

    @property
    def trust(self) -> TrustSpaceService:
        t = self.services.trust
        assert isinstance(t, TrustSpaceService)
        return t

    @property
    def dn(self) -> str:
        return subject_dn(self.data_dir / "tls" / "server.pem")

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def port(self, name: str) -> int:
        return self.runtime.ports[name][1]

    def trust_peer(self, domain: str, *, ca: Path | None, dn: str | None,
                   port: int) -> None:
        path = self.config.path(self.config.trust.local_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        local = load_local(path).with_domain(domain, [dn] if dn else [],
                                             NextHop("127.0.0.1", port))
        if ca is not None:
            local = local.with_ca(ca.read_text())
        save_local(path, local)
        self.trust.reload()

    def trust_operator(self, other: Operator, *, ca: bool = True) -> None:
        self.trust_peer(other.domain, ca=other.ca if ca else None, dn=other.dn,
                        port=other.port("smtp"))

    async def add_pro(self, local: str, rpps: str) -> str:
        await self.services.directory.add_professional(
            rpps=rpps, email=f"{local}@{self.domain}", name=local.title(), profession="10",
            password=PASSWORD)
        return f"{local}@{self.domain}"

    async def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        info = await self.services.directory.lookup(address)
        assert info is not None
        f = await self.services.store.get_folder(info.id, folder)
        out = []
        for m in await self.services.store.list_messages(f.id):
            out.append(await self.services.store.read_raw(m.id))
        return out

    async def wait_messages(self, address: str, count: int, timeout: float = 20.0,
                            folder: str = "INBOX") -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            got = await self.messages(address, folder)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)

    async def submit(self, sender: str, rcpts: list[str], subject: str, body: str = "Bonjour",
                     *, headers: dict[str, str] | None = None,
                     mail_options: list[str] | None = None,
                     rcpt_options: list[str] | None = None) -> None:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = ", ".join(rcpts)
        msg["Subject"] = subject
        for k, v in (headers or {}).items():
            msg[k] = v
        msg.set_content(body)
        ctx = ssl.create_default_context(cafile=str(self.ca))
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port("submission"),
                                   start_tls=True, tls_context=ctx) as smtp:
            await smtp.login(sender, PASSWORD)
            await smtp.send_message(msg, sender=sender, recipients=rcpts,
                                    mail_options=mail_options or [],
                                    rcpt_options=rcpt_options or [])


def make_operator_dir(base: Path, domain: str, zone_file: Path) -> Path:
    data_dir = base / domain
    init_data_dir(data_dir, domain)
    cfg = load(data_dir / "mssante.toml")
    keys = dkim.load_keys(data_dir / "dkim", cfg.dkim.selector)
    records: list[tuple[str, str]] = []
    for d in cfg.local_domains:
        records += dkim.txt_records(keys, d)
    add_zone_records(zone_file, records)
    return data_dir


def operator_config(data_dir: Path, zone_file: Path, *, queue: QueueConfig | None = None,
                    dkim_policy: str = "reject") -> Config:
    cfg = load(data_dir / "mssante.toml")
    return dataclasses.replace(
        cfg,
        auth=AuthConfig(fail_delay=0.0, max_fail_delay=0.0),
        trust=dataclasses.replace(cfg.trust, static_zone_file=str(zone_file)),
        dkim=dataclasses.replace(cfg.dkim, failure_policy=dkim_policy),
        queue=queue or QueueConfig(base_retry_seconds=0.3, max_retry_seconds=1.0,
                                   lease_seconds=30, poll_seconds=0.2, workers=2,
                                   connect_timeout=5),
    )


async def start_operator(base: Path, domain: str, zone_file: Path, **kw: object) -> Operator:
    data_dir = base / domain
    if not data_dir.exists():
        await asyncio.to_thread(make_operator_dir, base, domain, zone_file)
    config = operator_config(data_dir, zone_file, **kw)  # type: ignore[arg-type]
    services = await open_services(config, fast_passwords=True)
    rt = await start_runtime(config, ListenConfig(submission="127.0.0.1:0", smtp="127.0.0.1:0"),
                             services=services)
    return Operator(domain, data_dir, config, services, rt)
