"""``mssante keys shred`` reaches a running server at once: the command runs as its own process
on the same data dir while the server (IMAP + SMTP, in this process) keeps the key cached."""

from __future__ import annotations

import asyncio
import imaplib
import os
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from mailserver.config import Config
from mailserver.errors import KeyDestroyed
from mailserver.runtime import Runtime
from tests.conftest import PASSWORD, RPPS, add_pro
from tests.smtp.conftest import message as smtp_message

from .conftest import Imap


def _shred(data_dir: Path, database_url: str, address: str) -> subprocess.CompletedProcess[str]:
    if database_url:  # the command reads the data dir's config: point it at this test database
        toml = data_dir / "mssante.toml"
        text = toml.read_text()
        if "database_url = \"" + database_url not in text:
            toml.write_text(text.replace("[store]", f'[store]\ndatabase_url = "{database_url}"', 1))
    env = {**os.environ, "MSSANTE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "mailserver", "--log-level", "WARNING",
               "keys", "shred", address, "--yes"]
    return subprocess.run(command,  # noqa: S603 - our own command line
                          capture_output=True, text=True, timeout=120, env=env)


def _imap_fetch(imap: Imap, items: str = "(BODY.PEEK[])") -> tuple[str, list[object]]:
    with imaplib.IMAP4(imap.host, imap.port, timeout=30) as c:
        c.starttls(ssl_context=imap.tls)
        c.login(imap.user, imap.password)
        c.select("INBOX")
        typ, data = c.fetch("1", items)
        return typ, list(data)


def _send(runtime: Runtime, tls: ssl.SSLContext, sender: str, rcpt: str) -> object:
    host, port = runtime.ports["submission"]
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as c:
        c.starttls(context=tls)
        c.login(sender, PASSWORD)
        try:
            c.sendmail(sender, [rcpt], smtp_message(sender, rcpt, body="Compte rendu"))
        except smtplib.SMTPRecipientsRefused as exc:
            return exc.recipients[rcpt]
        return None


async def test_shred_by_command_takes_effect_in_running_server(
        imap: Imap, runtime: Runtime, config: Config, client_tls: ssl.SSLContext,
        database_url: str) -> None:
    services = imap.services
    sender = await add_pro(services, "dr.durand", RPPS[1])
    await asyncio.to_thread(_send, runtime, client_tls, sender.address, imap.user)
    # The server has read the mailbox (its data key is now in this process's cache).
    typ, data = await asyncio.to_thread(_imap_fetch, imap)
    assert typ == "OK" and b"Compte rendu" in data[0][1]  # type: ignore[index]
    assert services.keys.cache.get(imap.account_id) is not None
    for _ in range(2):  # the second answer comes from the sessions' decoded summaries
        typ, data = await asyncio.to_thread(_imap_fetch, imap, "(ENVELOPE)")
        assert typ == "OK" and b"ENVELOPE" in data[0], data  # type: ignore[operator]

    done = await asyncio.to_thread(_shred, config.data_dir, database_url, imap.user)
    assert done.returncode == 0, done.stderr

    # At once, without a restart: the running server no longer serves the mailbox ...
    typ, data = await asyncio.to_thread(_imap_fetch, imap)
    assert typ == "NO" and b"UNAVAILABLE" in data[0], data  # type: ignore[operator]
    typ, data = await asyncio.to_thread(_imap_fetch, imap, "(ENVELOPE)")
    assert typ == "NO" and b"UNAVAILABLE" in data[0], data  # type: ignore[operator]
    with pytest.raises(KeyDestroyed):
        await services.keys.get(imap.account_id)
    # ... and refuses new mail for it at RCPT, permanently, with the reason.
    refused = await asyncio.to_thread(_send, runtime, client_tls, sender.address, imap.user)
    assert refused is not None
    code, text = refused  # type: ignore[misc]
    assert code == 550 and text.startswith(b"5.2.1") and b"destroyed" in text
    inbox = await services.store.get_folder(imap.account_id, "INBOX")
    assert inbox.message_count == 1
    # Other mailboxes are untouched (the cache was dropped, their keys read again).
    third = await add_pro(services, "ide.petit", RPPS[2], "60")
    assert await asyncio.to_thread(_send, runtime, client_tls, third.address,
                                   sender.address) is None
    assert (await services.store.get_folder(sender.id, "INBOX")).message_count == 1
    # The shredded mailbox cannot send either (no Sent copy could be sealed): refused, not 451.
    refused = await asyncio.to_thread(_send, runtime, client_tls, imap.user, sender.address)
    assert refused is not None and refused[0] == 550  # type: ignore[index]
