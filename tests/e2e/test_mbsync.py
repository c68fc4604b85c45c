"""Debian's mbsync (isync) synchronises a 1,000-message mailbox both ways with the real server.

Run 1 copies everything to a Maildir; then flags change on both sides, messages are added on
both sides and deleted in the Maildir; run 2 carries every change across; run 3 transfers
nothing.  The IMAP server runs in the test's event loop on ephemeral loopback ports and
mbsync runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import ssl
from pathlib import Path

import pytest

from mailserver.app import Services
from mailserver.config import Config
from mailserver.imap.server import start_imap
from mailserver.tls import server_context
from tests.conftest import DOMAIN, PASSWORD, RPPS, add_pro

pytestmark = pytest.mark.e2e

MBSYNC = shutil.which("mbsync")
N = 1000


def _msg(i: int) -> bytes:
    return (f"From: Dr Durand <dr.durand@{DOMAIN}>\r\nTo: dr.martin@{DOMAIN}\r\n"
            f"Subject: Resultat {i}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
            f"Message-ID: <sync-{i}@{DOMAIN}>\r\n\r\nLigne {i}\r\n").encode()


def _rc(tmp: Path, port: int, ca: Path) -> Path:
    (tmp / "mail").mkdir(exist_ok=True)
    rc = tmp / "mbsyncrc"
    rc.write_text(f"""IMAPAccount mss
Host localhost
Port {port}
User dr.martin@{DOMAIN}
Pass {PASSWORD}
SSLType STARTTLS
CertificateFile {ca}
AuthMechs PLAIN

IMAPStore far
Account mss

MaildirStore near
Path {tmp}/mail/
Inbox {tmp}/mail/INBOX
SubFolders Verbatim

Channel sync
Far :far:
Near :near:
Patterns *
Sync All
Create Both
Expunge Both
SyncState *
""")
    return rc


async def _mbsync(rc: Path, *flags: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        MBSYNC, *flags, "-c", str(rc), "-a", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, "HOME": str(rc.parent)})
    out, _ = await asyncio.wait_for(proc.communicate(), 50)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def _files(tmp: Path, box: str = "INBOX") -> list[Path]:
    base = tmp / "mail" / box
    return sorted([*(base / "cur").iterdir(), *(base / "new").iterdir()])


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (Debian package isync) is not installed")
async def test_mbsync_two_way_sync(tmp_path: Path, config: Config, services: Services,
                                   client_tls: ssl.SSLContext) -> None:
    ctx = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    server = await start_imap(services.imap_backend(), "127.0.0.1", 0, ctx, implicit_tls=False)
    port = server.sockets[0].getsockname()[1]
    try:
        acct = await add_pro(services, "dr.martin", RPPS[0])
        st = services.store
        for start in range(0, N, 100):
            await asyncio.gather(*(st.append(acct.id, "INBOX", _msg(i))
                                   for i in range(start, start + 100)))
        rc = _rc(tmp_path, port, config.path(config.tls.ca_file))

        # Run 1: everything comes down, the special folders are created locally.
        await _mbsync(rc)
        files = _files(tmp_path)
        assert len(files) == N
        assert {p.name for p in (tmp_path / "mail").iterdir()} >= {
            "INBOX", "Sent", "Drafts", "Trash", "Archive", "Junk"}

        # Changes on the server: 10 flagged, 5 new messages.
        inbox = await st.get_folder(acct.id, "INBOX")
        await st.store_flags(inbox.id, list(range(1, 11)), ["\\Flagged"], "add")
        for i in range(N, N + 5):
            await st.append(acct.id, "INBOX", _msg(i))
        # Changes in the Maildir: 10 marked seen, 3 deleted, 1 new message.
        by_uid = {int(m.group(1)): p for p in files
                  if (m := re.search(r",U=(\d+)", p.name))}
        for uid in range(101, 111):
            p = by_uid[uid]
            base, _, flags = p.name.partition(":2,")
            p.rename(p.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags + 'S'))}")
        for uid in (500, 501, 502):
            by_uid[uid].unlink()
        (tmp_path / "mail" / "INBOX" / "new" / "1700000000.local.host").write_bytes(
            _msg(9999).replace(b"\r\n", b"\n"))

        # Run 2: both sides converge.
        await _mbsync(rc)
        infos = {m.uid: m for m in await st.list_messages(inbox.id)}
        assert len(infos) == N + 5 - 3 + 1
        assert all("\\Seen" in infos[u].flags for u in range(101, 111))
        assert not any(u in infos for u in (500, 501, 502))
        files = _files(tmp_path)
        assert len(files) == N + 5 - 3 + 1
        flagged = [p for p in files if "F" in p.name.partition(":2,")[2]]
        assert len(flagged) == 10
        raw_new = [p for p in files if b"Ligne 9999" in p.read_bytes()]
        assert len(raw_new) == 1

        # Run 3: nothing to transfer; the server's mailbox does not change.
        before = await st.get_folder(acct.id, "INBOX")
        names = [p.name for p in _files(tmp_path)]
        out = await _mbsync(rc, "-Dn")  # -Dn: log the IMAP commands sent
        sent = [line for line in out.splitlines() if line.startswith(">>> ")]
        assert any("SELECT" in line for line in sent), out[-2000:]
        assert not [line for line in sent if re.search(r"APPEND|STORE|EXPUNGE|BODY\.PEEK\[\]",
                                                         line)]
        after = await st.get_folder(acct.id, "INBOX")
        assert after.highestmodseq == before.highestmodseq
        assert after.uidnext == before.uidnext
        assert [p.name for p in _files(tmp_path)] == names
    finally:
        server.close()
