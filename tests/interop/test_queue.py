"""The durable outbound queue: exclusive claims, encryption at rest, RFC 3461 parameters,
the ``mssante queue`` and ``mssante dkim`` commands, the inbound DKIM policy."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from mailserver.app import open_services
from mailserver.cli import main
from mailserver.config import Config
from mailserver.dkim import signing as dkim
from mailserver.errors import StoreError
from mailserver.outbound.queue import OutboundQueue, backoff
from mailserver.store.queue import QueueMessage
from tests.interop.operators import RPPS, free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RAW = (b"From: alice@hopital.mssante.test\r\nTo: bob@remote.mssante.test\r\n"
       b"Subject: Secret medical subject\r\n\r\nConfidential body\r\n")


def _queue(services) -> OutboundQueue:  # type: ignore[no-untyped-def]
    q = services.queue
    assert isinstance(q, OutboundQueue)
    return q


async def _claim(q: OutboundQueue, limit: int) -> list:  # type: ignore[type-arg]
    # Two SQLite "processes" may find the database locked (busy timeout 0, see
    # store/sqlite_inline.py); the queue workers then simply try again, as here.
    for _ in range(200):
        try:
            return await q.claim(limit=limit)
        except StoreError:
            await asyncio.sleep(0.01)
    raise AssertionError("database stayed locked")


async def test_concurrent_claims_never_share_a_message(config: Config, services) -> None:  # type: ignore[no-untyped-def]
    q1 = _queue(services)
    for i in range(30):
        await q1.enqueue(f"alice{i}@hopital.mssante.test", ["bob@remote.mssante.test"], RAW)
    # A second "process" on the same database (own engine, own writer).
    other = await open_services(config, fast_passwords=True)
    try:
        q2 = _queue(other)
        got = await asyncio.gather(*(_claim(q, 4) for q in (q1, q2) for _ in range(6)))
        ids = [c.entry.id for batch in got for c in batch]
        assert len(ids) == len(set(ids)) == 30
        # Claimed messages are leased: nothing is due any more.
        assert await _claim(q1, 10) == [] and await _claim(q2, 10) == []
        # The plaintext comes back intact, DKIM-signed (our From domain).
        sample = got[0][0].raw
        assert sample.endswith(RAW) and sample.count(b"DKIM-Signature:") == 2
    finally:
        await other.close()


async def test_queued_content_is_encrypted_at_rest(services) -> None:  # type: ignore[no-untyped-def]
    q = _queue(services)
    await q.enqueue("alice@hopital.mssante.test", ["bob@remote.mssante.test"], RAW)
    async with services.db.session() as s:
        body = (await s.execute(select(QueueMessage.body_enc))).scalar_one()
    assert b"Secret medical" not in body and b"Confidential" not in body
    entry = (await q.list())[0]
    assert entry.domains == ("remote.mssante.test",)
    assert await q.drop(entry.id) and await q.list() == []
    assert not await q.drop(entry.id)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 60, 3600) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]


async def test_dsn_parameters_at_submission_are_kept(runtime, services, data_dir: Path,  # type: ignore[no-untyped-def]
                                                     client_tls: ssl.SSLContext) -> None:
    from tests.conftest import PASSWORD, add_pro

    # In a thread, as an operator's command beside the running server (the CLI runs its own
    # event loop, for the command and its audit row).
    assert await asyncio.to_thread(main, [
        "trust", "add", "--data-dir", str(data_dir), "--domain", "remote.mssante.test",
        "--ca", str(data_dir / "tls" / "ca.pem"), "--mx", f"127.0.0.1:{free_port()}"]) == 0
    services.trust.reload()
    pro = await add_pro(services)
    port = runtime.ports["submission"][1]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=True,
                               tls_context=client_tls) as smtp:
        ehlo = await smtp.ehlo()
        assert "DSN" in ehlo.message and "PIPELINING" in ehlo.message
        await smtp.login(pro.address, PASSWORD)
        await smtp.mail(pro.address, options=["RET=HDRS", "ENVID=QQ+2B1"])
        bad = await smtp.execute_command(b"RCPT TO:<x@remote.mssante.test> NOTIFY=NEVER,DELAY")
        assert bad.code == 501
        await smtp.rcpt("Bob@remote.mssante.test",
                        options=["NOTIFY=SUCCESS,FAILURE",
                                 "ORCPT=rfc822;Bob+40remote.mssante.test"])
        await smtp.data(f"From: {pro.address}\r\nTo: bob@remote.mssante.test\r\n"
                        "Subject: hi\r\n\r\nhello\r\n".encode())
    entry = (await _queue(services).list())[0]
    assert (entry.envid, entry.ret) == ("QQ+1", "HDRS")
    (rcpt,) = entry.recipients
    assert rcpt.address == "bob@remote.mssante.test"
    assert rcpt.notify == "SUCCESS,FAILURE"
    assert rcpt.orcpt == "rfc822;Bob@remote.mssante.test"


async def test_queue_cli(services, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    if not services.db.is_sqlite:
        pytest.skip("the CLI reads the data dir's own database (SQLite)")
    q = _queue(services)
    await q.enqueue("alice@hopital.mssante.test", ["bob@remote.mssante.test"], RAW)
    entry = (await q.list())[0]
    await q.reschedule(entry.id, next_attempt=entry.next_attempt.replace(year=2100),
                       error="451 4.4.1 try later")
    await services.close()  # the CLI opens the data dir itself (SQLite)

    def run(*argv: str) -> tuple[int, str]:
        rc = main([*argv[:2], "--data-dir", str(data_dir), *argv[2:]])
        return rc, capsys.readouterr().out

    rc, out = await asyncio.to_thread(run, "queue", "list")
    assert rc == 0 and "remote.mssante.test" in out and "451 4.4.1 try later" in out
    rc, out = await asyncio.to_thread(run, "queue", "show", str(entry.id))
    assert rc == 0 and "bob@remote.mssante.test: pending" in out
    rc, out = await asyncio.to_thread(run, "queue", "retry", str(entry.id))
    assert rc == 0
    rc, out = await asyncio.to_thread(run, "queue", "list")
    assert "(now)" in out
    rc, out = await asyncio.to_thread(run, "queue", "drop", str(entry.id))
    assert rc == 0
    rc, out = await asyncio.to_thread(run, "queue", "show", str(entry.id))
    assert rc == 1


def test_dkim_cli_show_prepare_rotate(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailserver.config import load
    from mailserver.dkim.keys import load_rotation

    assert main(["dkim", "show", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "mss1-rsa._domainkey.hopital.mssante.test. IN TXT" in out
    assert "k=ed25519" in out
    assert main(["dkim", "prepare", "--data-dir", str(data_dir), "mss2"]) == 0
    assert main(["dkim", "show", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "mss1-rsa._domainkey" in out and "mss2-rsa._domainkey" in out
    assert main(["dkim", "prepare", "--data-dir", str(data_dir), "mss3"]) == 2
    assert main(["dkim", "rotate", "--data-dir", str(data_dir)]) == 0
    config = load(data_dir / "mssante.toml")
    rotation = load_rotation(config)
    assert rotation.current.selector == "mss2"
    signed = dkim.sign(RAW, "hopital.mssante.test", rotation)
    assert b"s=mss2-rsa" in signed and b"s=mss2-ed" in signed


@pytest.mark.parametrize("policy", ["reject", "mark"])
async def test_inbound_dkim_failure_policy(operators, policy: str) -> None:  # type: ignore[no-untyped-def]
    a = await operators("a.mssante.test")
    b = await operators("b.mssante.test", dkim_policy=policy)
    b.trust_operator(a)
    bob = await b.add_pro("bob", RPPS[1])
    keys = dkim.load_keys(a.data_dir / "dkim", "mss1")
    msg = (f"From: alice@a.mssante.test\r\nTo: {bob}\r\nSubject: signed\r\n\r\n"
           "original body\r\n").encode()
    tampered = dkim.sign(msg, "a.mssante.test", keys).replace(b"original", b"modified")
    ctx = ssl.create_default_context(cafile=str(b.ca))
    ctx.load_cert_chain(str(a.data_dir / "tls" / "server.pem"),
                        str(a.data_dir / "tls" / "server.key"))
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=b.port("smtp"), start_tls=True,
                               tls_context=ctx) as smtp:
        await smtp.mail("alice@a.mssante.test")
        await smtp.rcpt(bob)
        if policy == "reject":
            with pytest.raises(aiosmtplib.SMTPDataError) as err:
                await smtp.data(tampered)
            assert err.value.code == 550 and "5.7.20" in err.value.message
            assert await b.messages(bob) == []
        else:
            await smtp.data(tampered)
            (got,) = await b.messages(bob)
            head = got.split(b"\r\n\r\n", 1)[0].decode()
            assert "Authentication-Results: b.mssante.test;" in head
            assert "dkim=fail" in head


async def test_queue_key_survives_master_key_rotation(services) -> None:  # type: ignore[no-untyped-def]
    from mailserver.store.queue import rewrap_queue_key

    q = _queue(services)
    await q.enqueue("alice@hopital.mssante.test", ["bob@remote.mssante.test"], RAW)
    ring = services.keys.ring
    ring.add_new_current()

    async def op(s):  # type: ignore[no-untyped-def]
        return await rewrap_queue_key(s, ring)

    assert await services.db.write(op) == 1
    ring.retire_others()
    fresh = OutboundQueue(services.config, services.db, ring)
    (claimed,) = await fresh.claim()
    assert claimed.raw.endswith(RAW)
