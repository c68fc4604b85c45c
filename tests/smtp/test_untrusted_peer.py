"""Port 25, a peer whose certificate we do not trust (issue 9): the TLS handshake completes
(Postfix ``smtpd_tls_ask_ccert``) and MAIL FROM is refused with a 5xx that says why, so the
peer bounces at once instead of retrying a TLS failure for days.

Real TLS; certificates made by the test PKI (tests/trust/certs.py).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from pathlib import Path

import pytest

from mailserver.app import Services
from mailserver.config import Config
from mailserver.runtime import Runtime
from mailserver.trust.space import TrustSpaceService
from mailserver.trust.trustlist import LocalTrust, save_local
from tests.conftest import DOMAIN, add_pro
from tests.trust.certs import CertAuthority, name

PEER = "autre.mssante.test"
LISTED = name("mx.autre.mssante.test", ou="4444444444", o="Autre Operateur")
OTHER = name("mx.intrus.test", ou="5555555555", o="Intrus")


@pytest.fixture(scope="module")
def trusted_ca() -> CertAuthority:
    return CertAuthority("trusted")


@pytest.fixture(scope="module")
def rogue_ca() -> CertAuthority:
    return CertAuthority("rogue")


@pytest.fixture
def trusting(config: Config, services: Services, trusted_ca: CertAuthority) -> None:
    """Our trust list: PEER with the LISTED subject, and the trusted CA only."""
    local = LocalTrust().with_domain(PEER, [LISTED.rfc4514_string()]).with_ca(
        trusted_ca.cert_pem)
    path = config.path(config.trust.local_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_local(path, local)
    assert isinstance(services.trust, TrustSpaceService)
    services.trust.reload()


def _client_context(data_dir: Path, tmp_path: Path, ca: CertAuthority | None,
                    subject: object = LISTED) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    if ca is not None:
        cert, key = ca.issue(subject).write(tmp_path, "peer")  # type: ignore[arg-type]
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _mail_from(runtime: Runtime, ctx: ssl.SSLContext, rcpt: str
               ) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    host, port = runtime.ports["smtp"]
    with smtplib.SMTP(host, port, local_hostname="mx.autre.mssante.test", timeout=10) as c:
        c.starttls(context=ctx)  # completes whatever the certificate
        c.ehlo()
        mail = c.docmd(f"MAIL FROM:<dr.autre@{PEER}>")
        if mail[0] != 250:
            return mail, (0, b"")
        c.docmd(f"RCPT TO:<{rcpt}>")
        data = c.data(f"From: dr.autre@{PEER}\r\nTo: {rcpt}\r\nSubject: avis\r\n\r\nBonjour\r\n")
        return mail, data


async def test_certificate_from_a_ca_outside_the_trust_list_gets_550_at_mail_from(
        runtime: Runtime, services: Services, data_dir: Path, tmp_path: Path,
        trusting: None, rogue_ca: CertAuthority, caplog: pytest.LogCaptureFixture) -> None:
    doctor = await add_pro(services)
    ctx = _client_context(data_dir, tmp_path, rogue_ca)  # the listed DN, from the wrong CA
    with caplog.at_level(logging.INFO):
        (code, text), _ = await asyncio.to_thread(_mail_from, runtime, ctx, doctor.address)
    assert code == 550
    # The reason is OpenSSL's (here: the issuer is unknown, the peer sent no chain).
    assert text.decode() == ("5.7.1 Client certificate not issued by a CA of the trust space"
                             " (unable to verify the first certificate)")
    assert any("reason=UNTRUSTED_CA" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (await services.store.get_folder(doctor.id, "INBOX")).message_count == 0


async def test_trusted_ca_but_dn_not_listed_gets_550_at_mail_from(
        runtime: Runtime, services: Services, data_dir: Path, tmp_path: Path,
        trusting: None, trusted_ca: CertAuthority) -> None:
    doctor = await add_pro(services)
    ctx = _client_context(data_dir, tmp_path, trusted_ca, OTHER)
    (code, text), _ = await asyncio.to_thread(_mail_from, runtime, ctx, doctor.address)
    assert (code, text) == (
        550, b"5.7.1 Client certificate subject is not listed for the sender's domain")


async def test_trusted_peer_is_unchanged(
        runtime: Runtime, services: Services, data_dir: Path, tmp_path: Path,
        trusting: None, trusted_ca: CertAuthority) -> None:
    doctor = await add_pro(services)
    ctx = _client_context(data_dir, tmp_path, trusted_ca)
    (code, _), (data_code, _) = await asyncio.to_thread(_mail_from, runtime, ctx,
                                                        doctor.address)
    assert (code, data_code) == (250, 250)
    assert (await services.store.get_folder(doctor.id, "INBOX")).message_count == 1


async def test_peer_without_certificate_is_unchanged(
        runtime: Runtime, services: Services, data_dir: Path, tmp_path: Path,
        trusting: None) -> None:
    doctor = await add_pro(services)
    ctx = _client_context(data_dir, tmp_path, None)
    (code, text), _ = await asyncio.to_thread(_mail_from, runtime, ctx, doctor.address)
    assert code == 550 and b"client certificate from a trusted CA is required" in text
    assert DOMAIN in doctor.address
