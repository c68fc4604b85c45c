"""Recipients over real SMTP: the recipient limit (RFC 5321 4.5.3.1.10) and the postmaster
mailbox (RFC 5321 4.5.1), issue 9 items 5 and 8."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import smtplib
import ssl
from collections.abc import AsyncIterator

import pytest

from mailserver.app import Services, open_services
from mailserver.config import Config, ListenConfig
from mailserver.runtime import Runtime, start_runtime
from tests.conftest import DOMAIN, PASSWORD, PATIENT_DOMAIN, RPPS, add_pro
from tests.smtp.conftest import message, submission


async def _inbox(services: Services, account_id: int) -> list[bytes]:
    folder = await services.store.get_folder(account_id, "INBOX")
    return [await services.store.read_raw(m.id)
            for m in await services.store.list_messages(folder.id)]


async def test_recipients_beyond_the_limit_do_not_end_the_session(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    limit = services.config.smtp.max_recipients
    assert limit == 100 and services.config.smtp.max_bad_commands == 20
    a = await add_pro(services, "dr.a")
    rcpts = [(await add_pro(services, f"r{i}", RPPS[1])) for i in range(limit)]
    extra = [f"extra{i}@{DOMAIN}" for i in range(20)]

    def run() -> dict[str, tuple[int, bytes]]:
        with submission(runtime, client_tls, a.address) as c:
            refused = c.sendmail(a.address, [r.address for r in rcpts] + extra,
                                 message(a.address, a.address, body="a tous"))
            assert c.noop()[0] == 250  # the connection is still usable
            return refused

    refused = await asyncio.to_thread(run)
    assert sorted(refused) == sorted(extra)
    assert all(code == 452 and text.startswith(b"4.5.3") for code, text in refused.values())
    for r in rcpts:
        got = await _inbox(services, r.id)
        assert len(got) == 1 and b"a tous" in got[0]


@pytest.mark.parametrize("rcpt", [
    f"postmaster@{DOMAIN}", f"PostMaster@{DOMAIN}", f"postmaster@{PATIENT_DOMAIN}",
    "postmaster", "Postmaster",
], ids=["domain", "case", "patient-domain", "bare", "bare-case"])
async def test_postmaster_accepted_at_submission(runtime: Runtime, services: Services,
                                                 client_tls: ssl.SSLContext, rcpt: str) -> None:
    a = await add_pro(services, "dr.a")
    pm = await services.directory.add_organisation(
        email=f"postmaster@{DOMAIN}", name="Postmaster", structure_id="1750000000",
        password=PASSWORD)

    def run() -> tuple[int, bytes]:
        with submission(runtime, client_tls, a.address) as c:
            c.docmd(f"MAIL FROM:<{a.address}>")
            got = c.docmd(f"RCPT TO:<{rcpt}>")
            c.docmd("DATA")
            c.send(message(a.address, rcpt, body="pour le postmaster") + b".\r\n")
            assert c.getreply()[0] == 250
            return got

    code, _ = await asyncio.to_thread(run)
    assert code == 250
    got = await _inbox(services, pm.id)
    assert len(got) == 1 and b"pour le postmaster" in got[0]


@pytest.fixture
async def pm_runtime(config: Config) -> AsyncIterator[tuple[Runtime, Services]]:
    """A server whose [smtp] postmaster is another mailbox than postmaster@<domain>."""
    cfg = dataclasses.replace(config, smtp=dataclasses.replace(
        config.smtp, postmaster=f"exploitation@{DOMAIN}"))
    services = await open_services(cfg, fast_passwords=True)
    rt = await start_runtime(cfg, ListenConfig(submission="127.0.0.1:0", smtp="127.0.0.1:0"),
                             services=services)
    try:
        yield rt, services
    finally:
        await rt.close()
        await services.close()


async def test_postmaster_routed_to_configured_mailbox_inbound(
        pm_runtime: tuple[Runtime, Services]) -> None:
    """Port-25 role: a null-sender report to <postmaster> reaches the configured mailbox
    (the trust list is empty, so no client certificate is required)."""
    runtime, services = pm_runtime
    ops = await services.directory.add_organisation(
        email=f"exploitation@{DOMAIN}", name="Exploitation", structure_id="1750000000",
        password=PASSWORD)
    host, port = runtime.ports["smtp"]

    def run() -> tuple[int, int]:
        with smtplib.SMTP(host, port, local_hostname="mta.op-b.test", timeout=30) as c:
            c.ehlo()
            assert c.docmd("MAIL FROM:<>")[0] == 250
            bare = c.docmd("RCPT TO:<postmaster>")[0]
            full = c.docmd(f"RCPT TO:<POSTMASTER@{DOMAIN}>")[0]
            c.docmd("DATA")
            c.send(b"From: <>\r\nSubject: report\r\n\r\nrapport\r\n.\r\n")
            assert c.getreply()[0] == 250
            return bare, full

    assert await asyncio.to_thread(run) == (250, 250)
    got = await _inbox(services, ops.id)
    assert len(got) == 1 and b"rapport" in got[0]


async def test_unrecognised_command_escaped_in_logs(runtime: Runtime,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = runtime.ports["smtp"]
    reader, writer = await asyncio.open_connection(host, port)
    await reader.readline()
    writer.write(b"EVIL\x00CMD\rFAKE\x1b[2J arg\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"500")
    writer.close()
    await asyncio.sleep(0.1)
    lines = [r.getMessage() for r in caplog.records if "unrecognised" in r.getMessage()]
    assert lines and all("\x00" not in s and "\r" not in s and "\x1b" not in s for s in lines)
    assert any("EVIL\\x00CMD\\x0dFAKE\\x1b[2J" in s for s in lines)
