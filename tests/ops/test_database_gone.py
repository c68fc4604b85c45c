"""The database going away gives submission clients a temporary failure (4xx, never a 250
nor a 5xx), and mail is accepted again once it is back, without a restart."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.conftest import PASSWORD, RPPS, add_pro
from tests.ops.faults import database_back, database_gone
from tests.smtp.conftest import message


def _login(runtime: Runtime, ctx: ssl.SSLContext, user: str) -> smtplib.SMTP:
    host, port = runtime.ports["submission"]
    client = smtplib.SMTP(host, port, timeout=30)
    client.starttls(context=ctx)
    client.login(user, PASSWORD)
    return client


def _send(runtime: Runtime, ctx: ssl.SSLContext, sender: str, to: str, subject: str,
          client: smtplib.SMTP | None = None) -> tuple[int, bytes]:
    """(code, text) of one submission: 250 when accepted, else the first refusal."""
    try:
        with client or _login(runtime, ctx, sender) as client:
            client.sendmail(sender, [to], message(sender, to, subject=subject))
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code, exc.smtp_error
    except smtplib.SMTPRecipientsRefused as exc:
        (code, text), = exc.recipients.values()
        return code, text
    return 250, b""


async def _inbox(services: Services, account_id: int) -> list[bytes]:
    folder = await services.store.get_folder(account_id, "INBOX")
    return [await services.store.read_raw(m.id)
            for m in await services.store.list_messages(folder.id)]


async def test_database_gone_gives_4xx_and_recovers(runtime: Runtime, services: Services,
                                                    client_tls: ssl.SSLContext,
                                                    data_dir: Path) -> None:
    a = await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    assert await asyncio.to_thread(_send, runtime, client_tls, a.address, b.address,
                                   "before") == (250, b"")
    open_client = await asyncio.to_thread(_login, runtime, client_tls, a.address)
    await database_gone(services, data_dir)
    try:
        during = [await asyncio.to_thread(_send, runtime, client_tls, a.address, b.address,
                                          "during", open_client),
                  await asyncio.to_thread(_send, runtime, client_tls, a.address, b.address,
                                          "during")]
    finally:
        await database_back(services, data_dir)
    for code, text in during:
        assert 400 <= code < 500, (code, text)
    assert await asyncio.to_thread(_send, runtime, client_tls, a.address, b.address,
                                   "after") == (250, b"")
    inbox = await _inbox(services, b.id)
    subjects = [raw.split(b"Subject: ")[1].split(b"\r\n")[0] for raw in inbox]
    assert subjects == [b"before", b"after"]
