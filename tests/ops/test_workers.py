"""Several server processes: ``serve --workers N`` (a parent binding the listeners, forked
children serving them) and two ``mssante serve`` on one PostgreSQL database, whose IMAP IDLE
sessions hear of each other's changes (new mail, flags, expunges) through LISTEN/NOTIFY; a
worker killed under SMTP load loses no acknowledged message and stores none twice. Real
subprocesses, real clients; the PostgreSQL tests run with MSSANTE_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiosmtplib
import pytest

from mailserver.app import open_services
from mailserver.config import ListenConfig
from mailserver.errors import ConfigError
from mailserver.supervisor import _backoff, _Slot, bind_listeners
from tests.conftest import DOMAIN, PASSWORD, PG_URL, RPPS, add_pro, make_config
from tests.imap.conftest import Imap, Raw, message, open_raw
from tests.ops.server import ROOT, Server, http_get, sample, serve

needs_pg = pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")
USER = f"dr.martin@{DOMAIN}"
SENDER = f"dr.durand@{DOMAIN}"


def _use_database(data_dir: Path, url: str) -> None:
    toml = data_dir / "mssante.toml"
    text = re.sub(r"(?m)^# database_url = .*$", f'database_url = "{url}"', toml.read_text())
    toml.write_text(text)


async def _prepare(data_dir: Path, database_url: str) -> tuple[Path, int]:
    _use_database(data_dir, database_url)
    s = await open_services(make_config(data_dir, database_url), fast_passwords=True)
    try:
        account = await add_pro(s, "dr.martin", RPPS[0])
        await add_pro(s, "dr.durand", RPPS[1])
    finally:
        await s.close()
    return data_dir, account.id


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _imap(server: Server, data_dir: Path, account_id: int) -> Imap:
    import ssl

    tls = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    host, port = server.ports["imaps"]
    return Imap(host, port, port, USER, PASSWORD, account_id, tls, None)  # type: ignore[arg-type]


async def test_sqlite_refuses_several_workers(data_dir: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailserver", "serve", "--data-dir", str(data_dir),
        "--workers", "2", "--smtp", "127.0.0.1:0", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"--workers above 1 needs PostgreSQL" in out


@needs_pg
async def test_workers_share_port_zero_restart_and_stop(data_dir: Path, database_url: str
                                                         ) -> None:
    data_dir, account_id = await _prepare(data_dir, database_url)
    server = await serve(data_dir, "submissions", "imaps", "metrics", extra=("--workers", "2"))
    try:
        ports = {line for line in server.stdout if line.startswith("listening: imaps")}
        assert len(ports) == 1  # every worker serves the one port the parent bound
        deadline = time.monotonic() + 30
        while len(_children(server.proc.pid)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        first = _children(server.proc.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        while time.monotonic() < deadline:
            now = _children(server.proc.pid)
            if len(now) == 2 and first[0] not in now:
                break
            await asyncio.sleep(0.1)
        now = _children(server.proc.pid)
        assert len(now) == 2 and first[0] not in now and first[1] in now
        # Sessions are served (by either worker) on the shared port.
        for _ in range(4):
            raw = await open_raw(_imap(server, data_dir, account_id))
            assert (await raw.cmd("NOOP"))[-1].split()[1] == b"OK"
            await raw.close()
        # Messages accepted by either worker are counted once in every scrape (summed).
        host, port = server.ports["submissions"]
        for i in range(6):
            await aiosmtplib.send(message(i), sender=SENDER, recipients=[USER], hostname=host,
                                  port=port, username=SENDER, password=PASSWORD, use_tls=True,
                                  tls_context=_imap(server, data_dir, account_id).tls)
        for _ in range(4):
            status, text = await asyncio.to_thread(http_get, server.url("/metrics"))
            assert status == 200
            assert sample(text, "mssante_smtp_messages_accepted_total", role="submission") == 6
    finally:
        started = time.monotonic()
        err = await server.stop()
        assert time.monotonic() - started < 10
    assert "restarting" in err
    assert server.proc.returncode == 0
    for pid in now:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(
            f"/proc/{pid}/stat").read_text().split()[2]


async def _idle(raw: Raw) -> None:
    assert (await raw.cmd('SELECT "INBOX"'))[-1].split()[1] == b"OK"
    await raw.write(b"i1 IDLE\r\n")
    assert (await raw.line()).startswith(b"+ ")


@needs_pg
async def test_idle_hears_of_changes_made_in_another_process(data_dir: Path,
                                                              database_url: str) -> None:
    data_dir, account_id = await _prepare(data_dir, database_url)
    a = await serve(data_dir, "imaps")
    b = await serve(data_dir, "submissions", "imaps")
    try:
        watcher = await open_raw(_imap(a, data_dir, account_id))
        await _idle(watcher)
        await asyncio.sleep(0.5)  # both listeners are up (LISTEN issued at start)
        host, port = b.ports["submissions"]
        t0 = time.monotonic()
        await aiosmtplib.send(message(1), sender=SENDER, recipients=[USER], hostname=host,
                              port=port, username=SENDER, password=PASSWORD, use_tls=True,
                              tls_context=_imap(a, data_dir, account_id).tls)
        sent = time.monotonic()
        assert await watcher.line(timeout=3) == b"* 1 EXISTS\r\n"
        assert time.monotonic() - sent < 1.0, time.monotonic() - t0
        assert await watcher.line(timeout=3) == b"* 1 RECENT\r\n"

        other = await open_raw(_imap(b, data_dir, account_id))
        assert (await other.cmd('SELECT "INBOX"'))[-1].split()[1] == b"OK"
        changed = time.monotonic()
        assert (await other.cmd("STORE 1 +FLAGS (\\Flagged)"))[-1].split()[1] == b"OK"
        line = await watcher.line(timeout=3)
        assert line.startswith(b"* 1 FETCH (") and b"\\Flagged" in line, line
        assert time.monotonic() - changed < 1.0

        assert (await other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))[-1].split()[1] == b"OK"
        expunged = time.monotonic()
        assert (await other.cmd("EXPUNGE"))[-1].split()[1] == b"OK"
        while (line := await watcher.line(timeout=3)) != b"* 1 EXPUNGE\r\n":
            assert line.startswith(b"* 1 FETCH ("), line  # the \\Deleted flag, if seen first
        assert time.monotonic() - expunged < 1.0
        await watcher.write(b"DONE\r\n")
        assert (await watcher.until("i1"))[-1].startswith(b"i1 OK")
        await watcher.close()
        await other.close()
    finally:
        await a.stop()
        await b.stop()


def test_the_parent_binds_port_zero_once_and_names_a_busy_port() -> None:
    socks = bind_listeners(ListenConfig(smtp="127.0.0.1:0", imaps="127.0.0.1:0"))
    try:
        port = socks["smtp"].getsockname()[1]
        assert port != 0 and socks["imaps"].getsockname()[1] not in (0, port)
        with pytest.raises(ConfigError, match=f"--smtp 127.0.0.1:{port}"):
            bind_listeners(ListenConfig(imap="127.0.0.1:0", smtp=f"127.0.0.1:{port}"))
    finally:
        for sock in socks.values():
            sock.close()


def test_a_worker_dying_quickly_backs_off_up_to_30_seconds() -> None:
    slot, now = _Slot(0), 1000.0
    delays = []
    for _ in range(8):
        slot.started = now - 1  # died one second after its start
        _backoff(slot, now)
        delays.append(slot.due - now)
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30]
    slot.started = now - 120  # lived two minutes: back to the first delay
    _backoff(slot, now)
    assert slot.due - now == 0.5


async def _sender(host: str, port: int, tls: object, n: int, stop: asyncio.Event,
                  acked: list[str]) -> None:
    """Send messages with unique Message-IDs until ``stop``; reconnect after a drop."""
    i = 0
    while not stop.is_set():
        smtp = aiosmtplib.SMTP(hostname=host, port=port, use_tls=True, tls_context=tls)
        try:
            await smtp.connect()
            await smtp.login(SENDER, PASSWORD)
            while not stop.is_set():
                i += 1
                mid = f"<k{n}-{i}@{DOMAIN}>"
                await smtp.sendmail(SENDER, [USER], message(i, msgid=mid))
                acked.append(mid)
        except (aiosmtplib.SMTPException, OSError):
            await asyncio.sleep(0.05)
        finally:
            smtp.close()


@needs_pg
async def test_a_worker_killed_under_load_loses_and_duplicates_nothing(
        data_dir: Path, database_url: str) -> None:
    data_dir, account_id = await _prepare(data_dir, database_url)
    server = await serve(data_dir, "submissions", "imaps", extra=("--workers", "2"))
    try:
        imap = _imap(server, data_dir, account_id)
        host, port = server.ports["submissions"]
        stop, acked = asyncio.Event(), []
        senders = [asyncio.create_task(_sender(host, port, imap.tls, n, stop, acked))
                   for n in range(8)]
        await asyncio.sleep(2)
        before = len(acked)
        os.kill(_children(server.proc.pid)[0], signal.SIGKILL)
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*senders)
        assert before > 0 and len(acked) > before  # the load went on after the kill
        raw = await open_raw(imap)
        assert (await raw.cmd('SELECT "INBOX"'))[-1].split()[1] == b"OK"
        lines = await raw.cmd("FETCH 1:* BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
        await raw.close()
    finally:
        await server.stop()
    stored = re.findall(rb"Message-ID: (<k[0-9]+-[0-9]+@[^>]+>)", b"".join(lines))
    ids = [m.decode() for m in stored]
    assert len(ids) == len(set(ids))  # nothing stored twice
    assert set(acked) <= set(ids)  # nothing acknowledged is missing
