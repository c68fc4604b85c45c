"""Submission under load survives SIGKILL: ``mssante serve`` takes mail from concurrent clients
(STARTTLS and implicit TLS, real certificates) and is killed at random moments, then restarted,
a few times. Every message that got a 250 is in the recipient's INBOX exactly once, byte for
byte (small ones in the row, large ones as blobs); no message is there twice, and the sender's
Sent copy is there exactly when the recipient's is (one transaction). After the crashes, the
blob sweep leaves exactly the blobs the rows name and every message stays readable.

``MSSANTE_CRASH_ROUNDS`` (default 2) sets the number of kills; SQLite, or PostgreSQL when
``MSSANTE_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import smtplib
import ssl
import threading
import time
from collections import Counter
from pathlib import Path

from mailserver.app import Services, open_services
from mailserver.config import load
from mailserver.store.blob_sweep import BlobSweep
from mailserver.store.blobs import LocalBlobStore
from tests.conftest import DOMAIN, PASSWORD, RPPS
from tests.ops.server import Server, serve

ROUNDS = int(os.environ.get("MSSANTE_CRASH_ROUNDS", "2"))
CLIENTS = 4
SENDER, RECIPIENT = f"dr.a@{DOMAIN}", f"dr.b@{DOMAIN}"


def _raw(tag: str) -> bytes:
    """A message whose content follows from its tag; every 4th is large (a blob)."""
    line = hashlib.sha256(tag.encode()).hexdigest()
    lines = 3000 if tag.endswith(("0", "4", "8")) else 3
    body = "\r\n".join(f"{i:05d} {line}" for i in range(lines))
    return (f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@{DOMAIN}>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def _client(server: Server, ctx: ssl.SSLContext, implicit: bool) -> smtplib.SMTP:
    if implicit:
        host, port = server.ports["submissions"]
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, context=ctx, timeout=10)
    else:
        host, port = server.ports["submission"]
        client = smtplib.SMTP(host, port, timeout=10)
        client.starttls(context=ctx)
    client.login(SENDER, PASSWORD)
    return client


def _load(server: Server, ctx: ssl.SSLContext, name: str, stop: threading.Event,
          acked: set[str]) -> None:
    """Send tagged messages until ``stop``; a tag goes into ``acked`` on its 250."""
    n = 0
    while not stop.is_set():
        try:
            with _client(server, ctx, implicit=n % 2 == 1) as client:
                for _ in range(5):
                    tag = f"{name}-{n:04d}"
                    n += 1
                    client.sendmail(SENDER, [RECIPIENT], _raw(tag))
                    acked.add(tag)
        except (OSError, smtplib.SMTPException):
            n += 1  # killed mid-message: that tag may or may not be stored
            time.sleep(0.05)


async def _seed(data_dir: Path, database_url: str) -> None:
    toml = data_dir / "mssante.toml"
    if database_url:
        toml.write_text(toml.read_text().replace(
            "[store]\n", f'[store]\ndatabase_url = "{database_url}"\n'))
    services = await open_services(load(toml), fast_passwords=True)
    try:
        for i, address in enumerate((SENDER, RECIPIENT)):
            await services.directory.add_professional(
                rpps=RPPS[i], email=address, name=address.split("@")[0], profession="10",
                password=PASSWORD)
    finally:
        await services.close()


async def _round(data_dir: Path, ctx: ssl.SSLContext, index: int, rng: random.Random,
                 acked: set[str]) -> None:
    server = await serve(data_dir, "submission", "submissions", level="WARNING")
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(server, ctx, f"r{index}c{c}", stop, acked))
               for c in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        await asyncio.sleep(rng.uniform(0.8, 2.0))
    finally:
        server.proc.kill()
        await server.proc.wait()
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join)


async def _tags(services: Services, address: str, folder: str) -> dict[str, list[bytes]]:
    info = await services.directory.lookup(address)
    assert info is not None
    f = await services.store.get_folder(info.id, folder)
    out: dict[str, list[bytes]] = {}
    for m in await services.store.list_messages(f.id):
        raw = await services.store.read_raw(m.id)
        tag = raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        out.setdefault(tag, []).append(raw)
    return out


async def _check(data_dir: Path, acked: set[str]) -> int:
    services = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    try:
        blobs = services.store.blobs
        assert isinstance(blobs, LocalBlobStore)
        swept = await BlobSweep(services.db, blobs, margin=0, interval=60).run_once()
        inbox = await _tags(services, RECIPIENT, "INBOX")
        sent = await _tags(services, SENDER, "Sent")
        assert acked <= inbox.keys(), sorted(acked - inbox.keys())[:5]
        assert Counter(len(v) for v in inbox.values()) == {1: len(inbox)}, "duplicates"
        for tag, (raw,) in inbox.items():
            assert raw.endswith(_raw(tag)), tag  # our Received line, then the exact bytes
        assert sent.keys() == inbox.keys()
        assert len(blobs.files_older_than(time.time() + 60)) == len(
            [t for t in inbox if t.endswith(("0", "4", "8"))])
        return len(swept.orphans)
    finally:
        await services.close()


async def test_sigkill_during_submission_loses_no_acknowledged_message(
        data_dir: Path, database_url: str) -> None:
    await _seed(data_dir, database_url)
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    rng = random.Random()  # noqa: S311 - timing jitter, not a secret
    acked: set[str] = set()
    for index in range(ROUNDS):
        before = len(acked)
        await _round(data_dir, ctx, index, rng, acked)
        assert len(acked) > before, "the kill must happen under load"
    orphans = await _check(data_dir, acked)
    print(f"{ROUNDS} kills, {len(acked)} acknowledged, {orphans} orphan blob(s) swept")
