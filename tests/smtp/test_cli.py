"""The command line as a user runs it: init, accounts, directory import, serve/restart."""

from __future__ import annotations

import os
import signal
import smtplib
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import INS, PG_URL, RPPS

SHARED = Path(__file__).resolve().parents[3] / "shared" / "domain"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def mssante(*args: str, stdin: str | None = None, data_dir: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = dict(ENV)
    if data_dir is not None:
        env["MSSANTE_DATA_DIR"] = str(data_dir)
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mailserver", "--log-level", "WARNING", *args],
        input=stdin, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def cli_dir(tmp_path: Path) -> Path:
    d = tmp_path / "d"
    r = mssante("init", "--data-dir", str(d), "--domain", "cli.mssante.test")
    assert r.returncode == 0, r.stderr
    return d


def test_init_layout_and_refusal(cli_dir: Path) -> None:
    assert (cli_dir / "mssante.toml").is_file()
    assert (cli_dir / "mssante.db").is_file()
    assert (cli_dir / "tls" / "ca.pem").is_file() and (cli_dir / "tls" / "server.pem").is_file()
    assert list((cli_dir / "dkim").glob("*.pem"))
    mode = stat.S_IMODE((cli_dir / "keys" / "master.key").stat().st_mode)
    assert mode == 0o600
    again = mssante("init", "--data-dir", str(cli_dir), "--domain", "cli.mssante.test")
    assert again.returncode != 0 and "not empty" in again.stderr


def test_accounts_and_identifier_errors(cli_dir: Path) -> None:
    ok = mssante("pro", "add", "--rpps", RPPS[0], "--email", "dr@cli.mssante.test",
                 "--name", "Dr Test", "--profession", "10", "--password-stdin",
                 stdin="a-long-password\n", data_dir=cli_dir)
    assert ok.returncode == 0, ok.stderr
    bad = mssante("pro", "add", "--rpps", "10003244274", "--email", "x@cli.mssante.test",
                  "--name", "X", "--profession", "10", "--password-stdin",
                  stdin="a-long-password\n", data_dir=cli_dir)
    assert bad.returncode == 2 and "Luhn" in bad.stderr
    dup = mssante("pro", "add", "--rpps", RPPS[1], "--email", "dr@cli.mssante.test",
                  "--name", "Dr Test", "--profession", "10", "--password-stdin",
                  stdin="a-long-password\n", data_dir=cli_dir)
    assert dup.returncode == 2 and "already registered" in dup.stderr
    org = mssante("org", "add", "--email", "pharmacie@cli.mssante.test", "--name",
                  "Pharmacie", "--structure", "1750000000", "--profession", "21",
                  "--password-stdin", stdin="a-long-password\n", data_dir=cli_dir)
    assert org.returncode == 0, org.stderr
    pat = mssante("patient", "add", "--ins", INS[0], "--name", "Marie Dupont",
                  data_dir=cli_dir)
    assert pat.returncode == 0, pat.stderr
    assert f"{INS[0]}@patient.cli.mssante.test" in pat.stdout
    assert "Provisional code:" in pat.stdout
    badins = mssante("patient", "add", "--ins", INS[0][:-1] + "0", "--name", "X",
                     data_dir=cli_dir)
    assert badins.returncode == 2 and "INS key" in badins.stderr


@pytest.mark.skipif(not (SHARED / "sample-extraction-mssante.txt").exists(),
                    reason="shared/domain sample not present")
def test_directory_import_is_idempotent(cli_dir: Path) -> None:
    sample = SHARED / "sample-extraction-mssante.txt"
    first = mssante("directory", "import", str(sample), "--quiet", data_dir=cli_dir)
    assert first.returncode == 0, first.stderr
    assert "inserted 6" in first.stdout
    second = mssante("directory", "import", str(sample), "--quiet", data_dir=cli_dir)
    assert "inserted 0, updated 0, unchanged 6" in second.stdout


def _serve(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mailserver", "--log-level", "WARNING", "serve",
         "--data-dir", str(data_dir), "--submission", "127.0.0.1:0", "--smtp", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    ports: dict[str, int] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith("listening: "):
            name, addr = line.split()[1:3]
            ports[name] = int(addr.rsplit(":", 1)[1])
        if line.strip() == "ready":
            return proc, ports
    proc.kill()
    raise AssertionError("server did not start")


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> float:
    start = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=10)
    return time.monotonic() - start


@pytest.mark.skipif(bool(PG_URL), reason="subprocess test uses the data dir's SQLite")
def test_serve_restart_keeps_mail_and_uids(cli_dir: Path) -> None:
    r = mssante("pro", "add", "--rpps", RPPS[0], "--email", "dr@cli.mssante.test",
                "--name", "Dr Test", "--profession", "10", "--password-stdin",
                stdin="a-long-password\n", data_dir=cli_dir)
    assert r.returncode == 0
    ctx = ssl.create_default_context(cafile=str(cli_dir / "tls" / "ca.pem"))

    def send(port: int, n: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as c:
            c.starttls(context=ctx)
            c.login("dr@cli.mssante.test", "a-long-password")
            for i in range(n):
                c.sendmail("dr@cli.mssante.test", ["dr@cli.mssante.test"],
                           f"From: dr@cli.mssante.test\r\nSubject: m{i}\r\n\r\nx\r\n".encode())

    proc, ports = _serve(cli_dir)
    try:
        send(ports["submission"], 3)
    finally:
        took = _stop(proc)
    assert took < 10 and proc.returncode == 0
    proc, ports = _serve(cli_dir)
    try:
        send(ports["submission"], 2)
    finally:
        _stop(proc, signal.SIGINT)
    import asyncio

    from mailserver.app import open_services
    from mailserver.config import load

    async def check() -> tuple[list[int], list[bytes]]:
        s = await open_services(load(cli_dir / "mssante.toml"))
        try:
            acct = await s.directory.lookup("dr@cli.mssante.test")
            assert acct is not None
            folder = await s.store.get_folder(acct.id, "INBOX")
            infos = await s.store.list_messages(folder.id)
            return [i.uid for i in infos], [await s.store.read_raw(i.id) for i in infos]
        finally:
            await s.close()

    uids, raws = asyncio.run(check())
    assert uids == [1, 2, 3, 4, 5]
    assert [r.split(b"Subject: ")[1].split(b"\r\n")[0] for r in raws] == \
        [b"m0", b"m1", b"m2", b"m0", b"m1"]


def test_keys_rotate_and_shred(cli_dir: Path) -> None:
    mssante("pro", "add", "--rpps", RPPS[0], "--email", "dr@cli.mssante.test", "--name", "D",
            "--profession", "10", "--password-stdin", stdin="a-long-password\n",
            data_dir=cli_dir)
    before = (cli_dir / "keys" / "master.key").read_text()
    r = mssante("keys", "rotate", data_dir=cli_dir)
    assert r.returncode == 0 and "re-wrapped" in r.stdout
    assert (cli_dir / "keys" / "master.key").read_text() != before
    r = mssante("keys", "shred", "dr@cli.mssante.test", data_dir=cli_dir)
    assert r.returncode == 1  # refuses without --yes
    r = mssante("keys", "shred", "dr@cli.mssante.test", "--yes", data_dir=cli_dir)
    assert r.returncode == 0, r.stderr
