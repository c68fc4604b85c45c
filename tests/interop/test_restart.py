"""Restart during delivery: ``mssante serve`` is killed (SIGKILL) while its queue delivers to
another operator, then restarted. Nothing is lost; duplicates stay within what SMTP's
at-least-once semantics allow (the messages claimed at the moment of the kill)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from email import message_from_bytes
from pathlib import Path

import pytest

from mailserver.app import open_services
from mailserver.config import load
from mailserver.trust.trustlist import NextHop, load_local, save_local
from tests.interop.operators import PASSWORD, RPPS, free_port, make_operator_dir, subject_dn

A, B = "a.mssante.test", "b.mssante.test"
TOTAL = 120
WORKERS, CLAIM = 1, 5  # mailserver.outbound.worker claims 5 at a time per worker

pytestmark = pytest.mark.e2e


def _serve(data_dir: Path, smtp: int, submission: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mailserver", "serve", "--data-dir", str(data_dir),
         "--smtp", f"127.0.0.1:{smtp}", "--submission", f"127.0.0.1:{submission}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
        env={**os.environ, "MSSANTE_LOG_LEVEL": "WARNING"})


async def _subjects(b, bob: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(message_from_bytes(raw)["Subject"]) for raw in await b.messages(bob)]


async def test_kill_during_delivery_loses_nothing(operators, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  zone_file: Path) -> None:
    b = await operators(B)
    bob = await b.add_pro("bob", RPPS[1])
    a_dir = await asyncio.to_thread(make_operator_dir, tmp_path, A, zone_file)
    toml = a_dir / "mssante.toml"
    text = toml.read_text().replace("[trust]\n", f'[trust]\nstatic_zone_file = "{zone_file}"\n')
    toml.write_text(text + f"\n[queue]\nworkers = {WORKERS}\nlease_seconds = 1\n"
                    "poll_seconds = 0.2\nbase_retry_seconds = 0.5\n")
    a_smtp, a_sub = free_port(), free_port()
    local = load_local(a_dir / "trust" / "local.json").with_domain(
        B, [b.dn], NextHop("127.0.0.1", b.port("smtp"))).with_ca(b.ca.read_text())
    (a_dir / "trust").mkdir(exist_ok=True)
    save_local(a_dir / "trust" / "local.json", local)
    b.trust_peer(A, ca=a_dir / "tls" / "ca.pem", dn=subject_dn(a_dir / "tls" / "server.pem"),
                 port=a_smtp)

    # Queue the messages before the server starts (as if accepted just before a restart).
    services = await open_services(load(toml), fast_passwords=True)
    try:
        alice = (await services.directory.add_professional(
            rpps=RPPS[0], email=f"alice@{A}", name="Alice", profession="10",
            password=PASSWORD)).address
        for i in range(TOTAL):
            raw = (f"From: {alice}\r\nTo: {bob}\r\nSubject: n{i:03d}\r\n\r\nbody {i}\r\n"
                   ).encode()
            await services.queue.enqueue(alice, [bob], raw)  # type: ignore[union-attr]
    finally:
        await services.close()

    proc = _serve(a_dir, a_smtp, a_sub)
    try:
        for _ in range(300):
            if len(await b.messages(bob)) >= 10:
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = len(await b.messages(bob))
        assert 10 <= at_kill < TOTAL, "the kill must happen during delivery"
        await asyncio.sleep(1.2)  # the claims of the killed process expire (lease 1 s)
        proc = _serve(a_dir, a_smtp, a_sub)
        for _ in range(600):
            if len(set(await _subjects(b, bob))) == TOTAL:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    subjects = await _subjects(b, bob)
    assert set(subjects) == {f"n{i:03d}" for i in range(TOTAL)}  # nothing lost
    duplicates = len(subjects) - TOTAL
    # At-least-once: only messages claimed (in flight) at the kill can arrive twice.
    assert 0 <= duplicates <= WORKERS * CLAIM
