"""The outbound lease is renewed while a delivery is in progress, so it can be short: a slow
peer does not make a second worker take the message, and a message whose server was killed
(SIGKILL) while it was claimed is delivered within seconds after the restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mailserver.app import open_services
from mailserver.config import QueueConfig, load
from mailserver.trust.trustlist import NextHop, load_local, save_local
from tests.interop.operators import (
    PASSWORD,
    RPPS,
    Operator,
    free_port,
    make_operator_dir,
    subject_dn,
)
from tests.ops.server import serve

A, B = "a.mssante.test", "b.mssante.test"
LEASE = 0.6


class SlowPeer:
    """Accepts connections and never greets: a courier talking to it waits (claimed)."""

    def __init__(self) -> None:
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def __call__(self, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(w)


def _route(a_dir: Path, b: Operator, port: int) -> None:
    """A's trust list: B's domain, DN and CA, reached at ``port``."""
    path = a_dir / "trust" / "local.json"
    path.parent.mkdir(exist_ok=True)
    save_local(path, load_local(path).with_domain(B, [b.dn], NextHop("127.0.0.1", port))
               .with_ca(b.ca.read_text()))


async def _queue_one(a_dir: Path, bob: str) -> None:
    services = await open_services(load(a_dir / "mssante.toml"), fast_passwords=True)
    try:
        alice = (await services.directory.add_professional(
            rpps=RPPS[0], email=f"alice@{A}", name="Alice", profession="10",
            password=PASSWORD)).address
        raw = f"From: {alice}\r\nTo: {bob}\r\nSubject: lease\r\n\r\nbonjour\r\n".encode()
        await services.queue.enqueue(alice, [bob], raw)  # type: ignore[union-attr]
    finally:
        await services.close()


def test_default_lease_is_short() -> None:
    assert QueueConfig().lease_seconds <= 30


async def test_kill_while_claimed_resumes_within_seconds(operators, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         zone_file: Path) -> None:
    b = await operators(B)
    bob = await b.add_pro("bob", RPPS[1])
    a_dir = await asyncio.to_thread(make_operator_dir, tmp_path, A, zone_file)
    toml = a_dir / "mssante.toml"
    toml.write_text(toml.read_text().replace(
        "[trust]\n", f'[trust]\nstatic_zone_file = "{zone_file}"\n')
        + f"\n[queue]\nworkers = 2\nlease_seconds = {LEASE}\npoll_seconds = 0.1\n"
        "base_retry_seconds = 0.3\nconnect_timeout = 30\n")
    b.trust_peer(A, ca=a_dir / "tls" / "ca.pem", dn=subject_dn(a_dir / "tls" / "server.pem"),
                 port=free_port())
    slow = SlowPeer()
    peer = await asyncio.start_server(slow, "127.0.0.1", 0)
    _route(a_dir, b, peer.sockets[0].getsockname()[1])
    await _queue_one(a_dir, bob)

    server = await serve(a_dir, "smtp", level="WARNING")
    try:
        for _ in range(100):
            if slow.connections:
                break
            await asyncio.sleep(0.05)
        assert slow.connections == 1, "the message is claimed and its peer is slow"
        await asyncio.sleep(3 * LEASE)  # three leases: renewed, never taken by the other worker
        assert slow.connections == 1
    finally:
        server.proc.kill()  # SIGKILL while the message is claimed
        await server.proc.wait()
        killed = time.monotonic()
        peer.close()
        for w in slow.writers:
            w.close()
    _route(a_dir, b, b.port("smtp"))  # the peer is back
    server = await serve(a_dir, "smtp", level="WARNING")
    started = time.monotonic()
    try:
        got = await b.wait_messages(bob, 1, timeout=15)
        resumed, restart = time.monotonic() - started, started - killed
    finally:
        await server.stop()
    assert len(got) >= 1 and b"Subject: lease" in got[0]  # at least once
    print(f"restarted in {restart:.2f} s, delivered {resumed:.2f} s later (lease {LEASE} s)")
    assert resumed < LEASE + 3
