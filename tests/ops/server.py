"""``mssante serve`` as a subprocess on ephemeral ports, for the operations tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parents[2]


@dataclass
class Server:
    proc: asyncio.subprocess.Process
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)

    async def stop(self) -> str:
        """SIGTERM, wait, return what the server wrote on stderr."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stderr is not None
        err = await asyncio.wait_for(self.proc.stderr.read(), 30)
        await asyncio.wait_for(self.proc.wait(), 30)
        return err.decode()

    def url(self, path: str) -> str:
        host, port = self.ports["metrics"]
        return f"http://{host}:{port}{path}"


async def serve(data_dir: Path, *listeners: str, level: str = "INFO",
                extra: tuple[str, ...] = ()) -> Server:
    """Start ``mssante serve --data-dir DATA_DIR --NAME 127.0.0.1:0`` for each listener name;
    returns once it printed ``ready``, with the bound ports."""
    args = [a for name in listeners for a in (f"--{name}", "127.0.0.1:0")]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailserver", "serve", "--data-dir", str(data_dir), *args, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MSSANTE_LOG_LEVEL": level})
    server = Server(proc)
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        if not line:
            err = await server.stop()
            raise AssertionError(f"server exited before ready: {err[-2000:]}")
        server.stdout.append(line)
        if line.startswith("listening: "):
            _, name, hostport = line.split()
            host, _, port = hostport.rpartition(":")
            server.ports[name] = (host, int(port))
        if line.strip() == "ready":
            return server


def http_get(url: str) -> tuple[int, str]:
    """Status and body of a GET (blocking: call in a thread)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - our own listener
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0
