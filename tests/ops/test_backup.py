"""``mssante backup`` while the server runs and writes, ``mssante restore`` elsewhere: the
restored server serves the same mailboxes byte for byte, and the same documents."""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
import os
import smtplib
import ssl
import subprocess
import sys
import threading
from pathlib import Path

from attachments.labels import Label
from dossier_bridge.store import NewDocument
from mailserver.app import open_services
from mailserver.cli.backup import POSTGRES_TEXT
from mailserver.config import load
from mailserver.directory.service import AccountInfo
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.ops.server import ROOT, serve

DOC = b"%PDF-1.4 compte rendu " + os.urandom(200_000)  # large: a blob


def _mssante(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mailserver", *args], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, check=False)


async def _seed(data_dir: Path) -> tuple[str, str, int]:
    """Two professionals and a patient holding one (blob) document; returns the addresses and
    the document's id."""
    services = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    try:
        a = await services.directory.add_professional(
            rpps=RPPS[0], email=f"dr.a@{DOMAIN}", name="Dr A", profession="10",
            password=PASSWORD)
        b = await services.directory.add_professional(
            rpps=RPPS[1], email=f"dr.b@{DOMAIN}", name="Dr B", profession="10",
            password=PASSWORD)
        patient, _ = await services.directory.add_patient(ins=INS[0], name="Marie Dupont")
        doc = NewDocument(content=DOC, sha256=hashlib.sha256(DOC).hexdigest(),
                          filename="cr.pdf", mime_type="application/pdf", label=Label.CPT_REND)
        filed = await services.documents.file(patient.id, doc, actor_account_id=a.id)
        return a.address, b.address, filed.document_id
    finally:
        await services.close()


def _send(port: int, ca: Path, sender: str, to: str, count: int, start: int) -> None:
    tls = ssl.create_default_context(cafile=str(ca))
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as c:
        c.starttls(context=tls)
        c.login(sender, PASSWORD)
        for i in range(start, start + count):
            body = ("x" * 76 + "\r\n") * (2000 if i % 3 == 0 else 3)  # every third: a blob
            raw = (f"From: {sender}\r\nTo: {to}\r\nSubject: n{i}\r\n"
                   f"Message-ID: <n{i}@{DOMAIN}>\r\n\r\n{body}").encode()
            c.sendmail(sender, [to], raw)


def _mailboxes(port: int, ca: Path, user: str) -> dict[tuple[str, int], bytes]:
    """(folder, UID) -> BODY[] of every message in INBOX and Sent, over IMAP."""
    tls = ssl.create_default_context(cafile=str(ca))
    out: dict[tuple[str, int], bytes] = {}
    with imaplib.IMAP4("localhost", port) as c:
        c.starttls(ssl_context=tls)
        c.login(user, PASSWORD)
        for folder in ("INBOX", "Sent"):
            c.select(folder, readonly=True)
            typ, data = c.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
            assert typ == "OK"
            for item in data:
                if isinstance(item, tuple):
                    uid = int(item[0].split(b"UID ")[1].split()[0])
                    out[(folder, uid)] = item[1]
        c.logout()
    return out


async def _document_hash(data_dir: Path, document_id: int) -> str:
    services = await open_services(load(data_dir / "mssante.toml"))
    try:
        patient = await services.directory.by_ins(INS[0])
        assert isinstance(patient, AccountInfo)
        _info, content = await services.documents.read(patient, patient.id, document_id)
        return hashlib.sha256(content).hexdigest()
    finally:
        await services.close()


async def test_backup_while_writing_then_restore(tmp_path: Path, data_dir: Path) -> None:
    a, b, doc_id = await _seed(data_dir)
    ca = data_dir / "tls" / "ca.pem"
    server = await serve(data_dir, "submission", "imap")
    port = server.ports["submission"][1]
    stop = threading.Event()

    def writer() -> None:  # keeps writing while the backup runs
        n = 1000
        while not stop.is_set():
            _send(port, ca, b, a, 5, n)
            n += 5

    try:
        await asyncio.to_thread(_send, port, ca, a, b, 12, 0)
        before = await asyncio.to_thread(_mailboxes, server.ports["imap"][1], ca, b)
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            await asyncio.sleep(0.5)
            done = await asyncio.to_thread(_mssante, "backup", "--data-dir", str(data_dir),
                                           "--to", str(tmp_path / "backup"))
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)
        original = {user: await asyncio.to_thread(_mailboxes, server.ports["imap"][1], ca, user)
                    for user in (a, b)}
    finally:
        await server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT included: the master key" in done.stdout
    assert not (tmp_path / "backup" / "keys").exists()

    restored_dir = tmp_path / "restored"
    r = await asyncio.to_thread(_mssante, "restore", "--from", str(tmp_path / "backup"),
                                "--data-dir", str(restored_dir), "--master-key",
                                str(data_dir / "keys" / "master.key"))
    assert r.returncode == 0, r.stdout + r.stderr
    restored = await serve(restored_dir, "imap")
    try:
        copies = {user: await asyncio.to_thread(_mailboxes, restored.ports["imap"][1],
                                                restored_dir / "tls" / "ca.pem", user)
                  for user in (a, b)}
    finally:
        await restored.stop()
    for user in (a, b):
        assert copies[user], user
        for key, raw in copies[user].items():  # what the snapshot holds, byte for byte
            assert original[user][key] == raw, key
    assert before.items() <= copies[b].items(), "everything acknowledged before the backup"
    assert len(copies[b]) > len(before), "the concurrent writer's mail up to the snapshot"
    assert await _document_hash(restored_dir, doc_id) == hashlib.sha256(DOC).hexdigest()


def test_backup_refuses_postgresql(data_dir: Path, tmp_path: Path) -> None:
    toml = data_dir / "mssante.toml"
    toml.write_text(toml.read_text().replace(
        "[store]\n", '[store]\ndatabase_url = "postgresql+asyncpg://u@127.0.0.1/mss"\n'))
    done = _mssante("backup", "--data-dir", str(data_dir), "--to", str(tmp_path / "b"))
    assert done.returncode == 2
    assert "pg_dump" in done.stdout and "pg_basebackup" in done.stdout
    assert POSTGRES_TEXT.splitlines()[0] in done.stdout
    assert not (tmp_path / "b").exists()
