"""Interop with a real peer: Debian's Postfix as a third operator, both directions, mutual TLS
and DKIM verified on both sides (see tests/interop/postfix.py)."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest

from mailserver.dkim import signing as dkim
from tests.interop.operators import RPPS, Operator, add_zone_records, free_port, subject_dn
from tests.interop.postfix import POSTFIX, PostfixOperator, start_postfix

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(POSTFIX is None,
                       reason="Postfix is not installed (apt-get install postfix)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting Postfix needs root"),
]

A, P = "a.mssante.test", "p.mssante.test"


@pytest.fixture
async def peers(operators, zone_file: Path  # type: ignore[no-untyped-def]
                ) -> AsyncIterator[tuple[Operator, PostfixOperator, dkim.SelectorKeys]]:
    a: Operator = await operators(A)
    pf = await asyncio.to_thread(start_postfix, P, peer_domain=A, peer_port=a.port("smtp"),
                                 peer_ca=a.ca, smtp_port=free_port(), inject_port=free_port())
    try:
        (pf.root / "dkim").mkdir()
        keys = dkim.generate_keys(pf.root / "dkim", "pf1")
        add_zone_records(zone_file, dkim.txt_records(keys, P))
        a.trust_peer(P, ca=pf.ca, dn=subject_dn(pf.cert), port=pf.smtp_port)
        yield a, pf, keys
    finally:
        await asyncio.to_thread(pf.stop)


def _zone_lookup(zone_file: Path) -> dkim.DictTxtLookup:
    zone = json.loads(zone_file.read_text())
    return dkim.DictTxtLookup({k: v["TXT"][0] for k, v in zone.items() if "TXT" in v})


async def test_we_deliver_to_postfix_with_mutual_tls_and_dkim(peers, zone_file: Path  # type: ignore[no-untyped-def]
                                                              ) -> None:
    a, pf, _ = peers
    alice = await a.add_pro("alice", RPPS[0])
    await a.submit(alice, [f"bob@{P}"], "Vers Postfix")
    got = await asyncio.to_thread(pf.wait_delivered, 1)
    assert len(got) == 1, pf.log()[-3000:]
    raw = got[0]
    # Postfix recorded our verified client certificate (smtpd_tls_received_header).
    received = raw.split(b"\n\n", 1)[0].decode()
    assert f'Client CN "{A}"' in received and "verified OK" in received
    # DKIM on the Postfix side: both of our signatures verify (dkimpy, as dkimverify does).
    result = dkim.verify(raw, _zone_lookup(zone_file))
    assert [s.result for s in result.signatures] == ["pass", "pass"]
    assert {s.algorithm for s in result.signatures} == {"rsa-sha256", "ed25519-sha256"}
    assert {s.domain for s in result.signatures} == {A}


async def test_postfix_delivers_to_us_with_mutual_tls_and_dkim(peers) -> None:  # type: ignore[no-untyped-def]
    a, pf, keys = peers
    alice = await a.add_pro("alice", RPPS[0])
    msg = EmailMessage()
    msg["From"] = f"bob@{P}"
    msg["To"] = alice
    msg["Subject"] = "Depuis Postfix"
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain=P)
    msg.set_content("Bonjour, voici le compte rendu.")
    signed = dkim.sign(msg.as_bytes().replace(b"\n", b"\r\n"), P, keys)

    def inject() -> None:
        with smtplib.SMTP("127.0.0.1", pf.inject_port, timeout=10) as s:
            s.sendmail(f"bob@{P}", [alice], signed)

    await asyncio.to_thread(inject)
    got = await a.wait_messages(alice, 1, timeout=30)
    assert len(got) == 1, pf.log()[-3000:]
    head = got[0].split(b"\r\n\r\n", 1)[0].decode()
    assert head.count("dkim=pass") == 2
    assert f"header.d={P}" in head
    assert "Subject: Depuis Postfix" in head
    # Postfix verified our server certificate (smtp_tls_security_level = secure).
    assert "Verified TLS connection established to 127.0.0.1" in pf.log()


async def test_postfix_untrusted_dn_is_refused(peers, operators) -> None:  # type: ignore[no-untyped-def]
    a, pf, keys = peers
    alice = await a.add_pro("alice", RPPS[0])
    # Postfix may not send for another trusted domain: its certificate is listed for P only.
    a.trust_peer("other.mssante.test", ca=None, dn="CN=mx.other.mssante.test,O=X,C=FR",
                 port=free_port())

    def inject() -> None:
        with smtplib.SMTP("127.0.0.1", pf.inject_port, timeout=10) as s:
            s.sendmail("eve@other.mssante.test", [alice], b"Subject: x\r\n\r\nx\r\n")

    await asyncio.to_thread(inject)
    for _ in range(100):
        if "not listed" in pf.log():
            break
        await asyncio.sleep(0.2)
    assert "550 5.7.1 Client certificate subject is not listed" in pf.log()
    assert await a.messages(alice) == []
