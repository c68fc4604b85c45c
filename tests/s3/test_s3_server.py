"""The server with its blobs in a real SeaweedFS bucket: a large message over SMTP is the same
over IMAP, a document is kept and read back, only ciphertext reaches the bucket, deletion
follows the rows, shredding cuts a mailbox off, and the store going away gives the client a 4xx
(nothing acknowledged is lost) until it comes back, without a restart."""

from __future__ import annotations

import asyncio
import imaplib
import io
import smtplib
import ssl
import time
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attachments.labels import Label
from mailserver.app import Services
from mailserver.cli import main
from mailserver.config import Config, ListenConfig
from mailserver.errors import KeyDestroyed
from mailserver.runtime import Runtime, start_runtime
from mailserver.store.blob_sweep import BlobSweep
from mailserver.store.blobs import new_blob_key
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS, add_patient, add_pro
from tests.ops.server import http_get
from tests.s3.conftest import objects
from tests.s3.weed import Weed


@pytest.fixture
async def server(config: Config, services: Services) -> AsyncIterator[Runtime]:
    rt = await start_runtime(config, ListenConfig(submission="127.0.0.1:0", imap="127.0.0.1:0",
                                                  metrics="127.0.0.1:0"), services=services)
    try:
        yield rt
    finally:
        await rt.close()


def _large(sender: str, to: str, marker: str) -> bytes:
    """A message of about 300 KiB (over the 128 KiB kept inline: it goes to the bucket)."""
    line = (marker + " compte rendu opératoire ").encode()[:70] + b"\r\n"
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {marker}\r\n"
            f"Message-ID: <{marker}@{DOMAIN}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode() + line * 4400


def _send(rt: Runtime, tls: ssl.SSLContext, sender: str, to: str, raw: bytes) -> int:
    host, port = rt.ports["submission"]
    try:
        with smtplib.SMTP(host, port, timeout=60) as c:
            c.starttls(context=tls)
            c.login(sender, PASSWORD)
            c.sendmail(sender, [to], raw)
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    return 250


def _imap(rt: Runtime, tls: ssl.SSLContext, user: str, *commands: tuple[str, ...]
          ) -> list[object]:
    host, port = rt.ports["imap"]
    out = []
    with imaplib.IMAP4(host, port, timeout=60) as c:
        c.starttls(ssl_context=tls)
        c.login(user, PASSWORD)
        for name, *args in commands:
            typ, data = getattr(c, name)(*args)
            assert typ == "OK", (name, data)
            out.append(data)
    return out


def _fetch_all(rt: Runtime, tls: ssl.SSLContext, user: str, folder: str = "INBOX"
               ) -> list[bytes]:
    _sel, data = _imap(rt, tls, user, ("select", folder), ("fetch", "1:*", "(BODY.PEEK[])"))
    return [part[1] for part in data if isinstance(part, tuple)]  # type: ignore[misc]


async def test_large_message_over_smtp_is_identical_over_imap(
        server: Runtime, services: Services, client_tls: ssl.SSLContext, weed: Weed,
        prefix: str) -> None:
    a = await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    raw = _large(a.address, b.address, "Xq7marker")
    assert await asyncio.to_thread(_send, server, client_tls, a.address, b.address, raw) == 250
    fetched, = await asyncio.to_thread(_fetch_all, server, client_tls, b.address)
    assert fetched.endswith(raw) and fetched.startswith(b"Received: ")
    stored = await objects(weed, prefix)
    assert len(stored) == 1  # one sealed copy for the recipient and the Sent copy
    blob, = stored.values()
    assert b"Xq7marker" not in blob and len(blob) > len(raw)  # sealed before it left
    sent, = await asyncio.to_thread(_fetch_all, server, client_tls, a.address, "Sent")
    assert sent == fetched

    # Deletion follows the rows: the blob goes with its last message.
    for user, folder in ((b.address, "INBOX"), (a.address, "Sent")):
        assert len(await objects(weed, prefix)) == 1
        await asyncio.to_thread(_imap, server, client_tls, user, ("select", folder),
                                ("store", "1", "+FLAGS", "(\\Deleted)"), ("expunge",))
    assert await objects(weed, prefix) == {}


async def test_document_in_the_bucket(services: Services, weed: Weed, prefix: str) -> None:
    doctor = await add_pro(services, "dr.a")
    patient = await add_patient(services, INS[0])
    content = b"%PDF-1.4\n% Zr9doc " + b"compte rendu " * 30_000 + b"\n%%EOF\n"
    result = await services.documents.upload(doctor, patient.id, content, filename="cr.pdf",
                                             mime_type="application/pdf",
                                             label=Label.CPT_REND, title="Compte rendu")
    stored = await objects(weed, prefix)
    assert len(stored) == 1 and b"Zr9doc" not in next(iter(stored.values()))
    _info, back = await services.documents.read(patient, patient.id, result.document_id)
    assert back == content


async def test_shredded_mailbox_blob_is_unreadable(
        server: Runtime, services: Services, client_tls: ssl.SSLContext, weed: Weed,
        prefix: str) -> None:
    a = await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    raw = _large(a.address, b.address, "Kp2marker")
    assert await asyncio.to_thread(_send, server, client_tls, a.address, b.address, raw) == 250
    inbox = await services.store.get_folder(b.id, "INBOX")
    message, = await services.store.list_messages(inbox.id)
    await services.keys.destroy(b.id)
    await services.keys.destroy(a.id)
    with pytest.raises(KeyDestroyed):
        await services.store.read_raw(message.id)
    blob, = (await objects(weed, prefix)).values()  # what the bucket still holds is noise
    assert b"Kp2marker" not in blob


async def test_store_down_gives_4xx_and_comes_back(
        server: Runtime, services: Services, client_tls: ssl.SSLContext, weed: Weed) -> None:
    a = await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    host, port = server.ports["metrics"]
    readyz = f"http://{host}:{port}/readyz"
    before = _large(a.address, b.address, "before")
    assert await asyncio.to_thread(_send, server, client_tls, a.address, b.address,
                                   before) == 250
    await asyncio.to_thread(weed.stop)
    try:
        during = _large(a.address, b.address, "during")
        started = time.monotonic()
        code = await asyncio.to_thread(_send, server, client_tls, a.address, b.address, during)
        assert code == 451, code  # try again later: the client keeps the message
        assert time.monotonic() - started < 15
        status, text = await asyncio.to_thread(http_get, readyz)
        assert status == 503 and "blobs: " in text
    finally:
        await asyncio.to_thread(weed.start)
    assert (await asyncio.to_thread(http_get, readyz))[0] == 200
    after = _large(a.address, b.address, "after")
    assert await asyncio.to_thread(_send, server, client_tls, a.address, b.address,
                                   after) == 250
    inbox = await asyncio.to_thread(_fetch_all, server, client_tls, b.address)
    assert len(inbox) == 2 and inbox[0].endswith(before) and inbox[1].endswith(after)


async def test_orphan_sweep_on_the_bucket(services: Services, weed: Weed, prefix: str) -> None:
    a = await add_pro(services, "dr.a")
    await services.store.append(a.id, "INBOX", _large(a.address, a.address, "kept"))
    orphan = new_blob_key()
    await services.blobs.put(orphan, b"sealed bytes of a delivery that never committed")
    time.sleep(3.1)  # LastModified is in whole seconds
    young = new_blob_key()
    await services.blobs.put(young, b"a delivery in progress")
    sweep = BlobSweep(services.db, services.blobs, margin=2.0, interval=3600.0)
    dry = await sweep.run_once(dry_run=True)
    assert (dry.old, dry.orphans) == (2, (orphan,))
    assert (await sweep.run_once()).orphans == (orphan,)
    names = {name.rpartition("/")[2] for name in await objects(weed, prefix)}
    assert len(names) == 2 and young in names and orphan not in names
    folder = await services.store.get_folder(a.id, "INBOX")
    message, = await services.store.list_messages(folder.id)
    assert b"kept" in await services.store.read_raw(message.id)


def test_backup_refuses_a_bucket(data_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    toml = data_dir / "mssante.toml"
    toml.write_text(toml.read_text().replace(
        "[store]\n", '[store]\nblob_url = "s3://mssante-blobs/prod"\n'
        's3_endpoint = "http://127.0.0.1:8333"\n'))
    assert main(["backup", "--data-dir", str(data_dir), "--to", str(tmp_path / "b")]) == 2
    out = capsys.readouterr().out
    assert "S3 bucket" in out and "aws s3 sync s3://mssante-blobs/prod" in out
    assert "versioning" in out and "weed filer.backup" in out
    assert not (tmp_path / "b").exists()


async def test_prepared_export_streams_through_the_bucket(services: Services, weed: Weed,
                                                          prefix: str) -> None:
    """A prepared archive goes up sealed piece by piece, comes back decrypted as it streams,
    and its object goes when it expires."""
    patient = await add_patient(services, INS[0])
    raw = _large("dr.a@" + DOMAIN, patient.address, "Wz5marker")
    assert await services.store.append(patient.id, "INBOX", raw)
    prepared = services.prepared_exports
    assert prepared is not None
    message_blob = set(await objects(weed, prefix))
    await prepared.request(await services.directory.get(patient.id))
    assert await services.runner.run_due() >= 1
    (name, sealed), = [(n, b) for n, b in (await objects(weed, prefix)).items()
                       if n not in message_blob]  # the archive
    assert b"Wz5marker" not in sealed and b"PK" not in sealed[:8]
    archive = b"".join([p async for p in prepared.stream(
        await services.directory.get(patient.id))])
    zf = zipfile.ZipFile(io.BytesIO(archive))
    eml, = [n for n in zf.namelist() if n.endswith(".eml")]
    assert zf.read(eml) == raw
    assert await prepared.expire_due(datetime.now(UTC) + timedelta(days=30)) == 1
    assert set(await objects(weed, prefix)) == message_blob
