"""Two (and three) instances of our server as operators of one trust space: mutual TLS, DKIM,
the durable queue, retries and bounces."""

from __future__ import annotations

import asyncio
import ssl
from email import message_from_bytes
from email.policy import default as default_policy

import aiosmtplib
import pytest

from mailserver.config import QueueConfig
from mailserver.outbound.queue import OutboundQueue
from mailserver.reports.dsn import parse_dsn
from tests.interop.operators import RPPS, free_port

A, B, C = "a.mssante.test", "b.mssante.test", "c.mssante.test"


def _header(raw: bytes, name: str) -> list[str]:
    msg = message_from_bytes(raw, policy=default_policy)
    return [str(v) for v in msg.get_all(name, [])]


async def test_mail_both_ways_with_mutual_tls_and_dkim(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A)
    b = await operators(B)
    a.trust_operator(b)
    b.trust_operator(a)
    alice = await a.add_pro("alice", RPPS[0])
    bob = await b.add_pro("bob", RPPS[1])

    await a.submit(alice, [bob], "Compte rendu A->B")
    got = await b.wait_messages(bob, 1)
    assert len(got) == 1
    ar = " ".join(_header(got[0], "Authentication-Results"))
    assert ar.startswith(b.config.hostname)
    # Both signatures (RFC 8463 dual signing) verified with A's published keys.
    assert ar.count("dkim=pass") == 2
    assert "header.d=a.mssante.test" in ar
    assert "header.a=ed25519-sha256" in ar and "header.a=rsa-sha256" in ar
    assert _header(got[0], "Subject") == ["Compte rendu A->B"]

    await b.submit(bob, [alice], "Réponse B->A")
    back = await a.wait_messages(alice, 1)
    assert len(back) == 1
    assert " ".join(_header(back[0], "Authentication-Results")).count("dkim=pass") == 2

    # The sender keeps a Sent copy; the queue entry is finished and its content dropped.
    assert len(await a.messages(alice, "Sent")) == 1
    queue = a.services.queue
    assert isinstance(queue, OutboundQueue)
    assert await queue.list() == []
    done = await queue.list(include_done=True)
    assert [r.state for r in done[0].recipients] == ["delivered"]


async def test_connection_reuse_for_consecutive_messages(operators, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.INFO, logger="mailserver.outbound.courier")
    a = await operators(A, queue=QueueConfig(workers=1, poll_seconds=0.2,
                                             base_retry_seconds=0.3, lease_seconds=30))
    b = await operators(B)
    a.trust_operator(b)
    b.trust_operator(a)
    alice = await a.add_pro("alice", RPPS[0])
    bob = await b.add_pro("bob", RPPS[1])
    carol = await b.add_pro("carol", RPPS[2])
    for i in range(3):
        await a.submit(alice, [bob, carol], f"n{i}")
    assert len(await b.wait_messages(bob, 3)) == 3
    assert len(await b.wait_messages(carol, 3)) == 3
    # One worker, one domain: a single verified connection carried all three transactions.
    connects = [r for r in caplog.records if "outbound: connected to" in r.getMessage()]
    assert len(connects) == 1


async def test_inbound_refuses_peer_without_client_certificate(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A)
    b = await operators(B)
    b.trust_operator(a)
    ctx = ssl.create_default_context(cafile=str(b.ca))
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=b.port("smtp"), start_tls=True,
                               tls_context=ctx) as smtp:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as err:
            await smtp.mail(f"alice@{A}")
        assert err.value.code == 550
        assert "client certificate" in err.value.message
    # Without TLS at all: 530, never a plaintext transaction between operators.
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=b.port("smtp"),
                               start_tls=False) as smtp:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as err:
            await smtp.mail(f"alice@{A}")
        assert err.value.code == 530


async def test_certificate_dn_must_match_sender_domain(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A)
    b = await operators(B)
    b.trust_operator(a)
    # B also trusts C's domain, but only with a DN that is not A's: A's certificate may not
    # send for C.
    b.trust_peer(C, ca=None, dn="CN=mx.c.mssante.test,O=Operateur C,C=FR", port=free_port())
    ctx = ssl.create_default_context(cafile=str(b.ca))
    ctx.load_cert_chain(str(a.data_dir / "tls" / "server.pem"),
                        str(a.data_dir / "tls" / "server.key"))
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=b.port("smtp"), start_tls=True,
                               tls_context=ctx) as smtp:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as err:
            await smtp.mail(f"someone@{C}")
        assert err.value.code == 550
        assert "not listed" in err.value.message
        await smtp.rset()
        reply = await smtp.mail(f"alice@{A}")  # its own domain: accepted
        assert reply.code == 250


async def test_operator_with_untrusted_ca_is_refused(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A)
    b = await operators(B)
    c = await operators(C, queue=QueueConfig(lifetime_seconds=3600, base_retry_seconds=0.3,
                                             max_retry_seconds=0.5, poll_seconds=0.2,
                                             workers=1, connect_timeout=5))
    c.trust_operator(b)
    # B trusts A's CA, and lists C's domain and DN, but not C's CA. The TLS handshake
    # completes (smtpd_tls_ask_ccert); B refuses at MAIL FROM with a 5xx that says why, so C
    # bounces at once instead of retrying a TLS failure for days.
    b.trust_operator(a)
    b.trust_operator(c, ca=False)
    carl = await c.add_pro("carl", RPPS[0])
    bob = await b.add_pro("bob", RPPS[1])
    await c.submit(carl, [bob], "should not arrive")
    reports = await c.wait_messages(carl, 1, timeout=15)
    failed = parse_dsn(reports[0])
    assert [r.action for r in failed.recipients] == ["failed"]
    assert failed.recipients[0].status.startswith("5.")
    diagnostic = failed.recipients[0].diagnostic or ""
    assert "550 5.7.1 Client certificate not issued by a CA of the trust space" in diagnostic
    queue = c.services.queue
    assert isinstance(queue, OutboundQueue)
    # The bounce is delivered before the entry is marked done: wait for that second step.
    for _ in range(50):
        done = await queue.list(include_done=True)
        if done[0].state == "done":
            break
        await asyncio.sleep(0.1)
    assert done[0].state == "done" and done[0].attempts == 1
    assert await b.messages(bob) == []


async def test_down_peer_is_retried_then_bounced_with_original_headers(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A, queue=QueueConfig(lifetime_seconds=3, delay_warning_seconds=1,
                                             base_retry_seconds=0.3, max_retry_seconds=0.5,
                                             poll_seconds=0.1, workers=1, connect_timeout=2))
    b_ca = a.ca  # any CA: the peer never answers
    a.trust_peer("down.mssante.test", ca=b_ca, dn=None, port=free_port())
    alice = await a.add_pro("alice", RPPS[0])
    await a.submit(alice, ["rcpt@down.mssante.test"], "Ordonnance urgente",
                   headers={"X-Test-Marker": "original-42"},
                   mail_options=["ENVID=env+2B42"], rcpt_options=["NOTIFY=FAILURE,DELAY"])
    reports = await a.wait_messages(alice, 2, timeout=15)
    assert len(reports) == 2
    delayed, failed = (parse_dsn(r) for r in reports)
    assert [r.action for r in delayed.recipients] == ["delayed"]
    assert [r.action for r in failed.recipients] == ["failed"]
    assert failed.recipients[0].final_recipient.endswith("rcpt@down.mssante.test")
    assert failed.recipients[0].status.startswith("4.4")  # expired (RFC 3463 4.4.7)
    assert failed.envid == "env+42"
    assert failed.returned_headers is not None and not failed.returned_full
    # RET absent -> headers only, which include the original's own headers.
    assert b"X-Test-Marker: original-42" in reports[1]
    assert b"Ordonnance urgente" in reports[1]
    queue = a.services.queue
    assert isinstance(queue, OutboundQueue)
    done = await queue.list(include_done=True)
    assert done[0].state == "done" and done[0].attempts >= 2


async def test_remote_domain_outside_trust_space_refused_at_submission(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A)
    alice = await a.add_pro("alice", RPPS[0])
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as err:
        await a.submit(alice, ["x@nowhere.example"], "hello")
    assert "trust space" in str(err.value)


async def test_read_receipt_travels_back_to_the_sender(operators) -> None:  # type: ignore[no-untyped-def]
    from mailserver.notices import MDN_SENT
    from mailserver.reports.mdn import parse_mdn

    a = await operators(A)
    b = await operators(B)
    a.trust_operator(b)
    b.trust_operator(a)
    alice = await a.add_pro("alice", RPPS[0])
    bob = await b.add_pro("bob", RPPS[1])
    await a.submit(alice, [bob], "Merci de confirmer la lecture",
                   headers={"Disposition-Notification-To": alice})
    assert len(await b.wait_messages(bob, 1)) == 1
    reader = await b.services.directory.lookup(bob)
    assert reader is not None
    inbox = await b.services.store.get_folder(reader.id, "INBOX")
    (info,) = await b.services.store.list_messages(inbox.id)
    assert await b.services.system_mail.read_receipt(reader, info.id)
    assert not await b.services.system_mail.read_receipt(reader, info.id)  # only once
    (flagged,) = await b.services.store.list_messages(inbox.id)
    assert MDN_SENT in flagged.flags
    (receipt,) = await a.wait_messages(alice, 1)
    parsed = parse_mdn(receipt)
    assert parsed.disposition.endswith("displayed")
    assert parsed.final_recipient.endswith(bob)
    head = receipt.split(b"\r\n\r\n", 1)[0].decode()
    assert head.count("dkim=pass") == 2  # signed by B as MAILER-DAEMON@b.mssante.test


async def test_notify_success_is_reported_by_the_final_operator(operators) -> None:  # type: ignore[no-untyped-def]
    a = await operators(A)
    b = await operators(B)
    a.trust_operator(b)
    b.trust_operator(a)
    alice = await a.add_pro("alice", RPPS[0])
    bob = await b.add_pro("bob", RPPS[1])
    await a.submit(alice, [bob], "Avec accusé de remise", mail_options=["ENVID=track-1"],
                   rcpt_options=["NOTIFY=SUCCESS", f"ORCPT=rfc822;{bob}"])
    assert len(await b.wait_messages(bob, 1)) == 1
    (report,) = await a.wait_messages(alice, 1)
    parsed = parse_dsn(report)
    assert parsed.envid == "track-1"
    assert [(r.action, r.status) for r in parsed.recipients] == [("delivered", "2.0.0")]
    assert parsed.recipients[0].original_recipient == bob
    assert parsed.reporting_mta is not None and B in parsed.reporting_mta
