"""CPU time of aiosmtpd's stock DATA path versus MailSMTP's chunked reader.

Each server runs in its own subprocess with a handler that stores nothing; the client (this
process) sends messages over one loopback connection and reads the server's CPU time
(utime + stime) from /proc before and after. Plain TCP, no TLS.

    .venv/bin/python bench/data_reader.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mime import build_message, stuff  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class NullHandler:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 2.0.0 OK"


def serve(kind: str) -> None:
    """Child: run one server on 127.0.0.1:0, print the port, stop when stdin closes."""
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    from aiosmtpd.smtp import SMTP

    from mailserver.smtp.protocol import MailSMTP

    cls = SMTP if kind == "stock" else MailSMTP

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: cls(NullHandler(), hostname="bench", data_size_limit=64 * 1024 * 1024),
            "127.0.0.1", 0,
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed")
        if line[3:4] != b"-":
            return int(line[:3])


async def send_many(port: int, wire: bytes, count: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    writer.write(b"EHLO bench\r\n")
    await reply(reader)
    started = time.perf_counter()
    for _ in range(count):
        writer.write(b"MAIL FROM:<a@example.org>\r\n")
        assert await reply(reader) == 250
        writer.write(b"RCPT TO:<b@example.org>\r\n")
        assert await reply(reader) == 250
        writer.write(b"DATA\r\n")
        assert await reply(reader) == 354
        writer.write(wire)
        code = await reply(reader)
        assert code == 250, code
    elapsed = time.perf_counter() - started
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()
    return elapsed


def measure(kind: str, wire: bytes, count: int) -> tuple[float, float]:
    """Return (server CPU seconds per message, messages per second)."""
    child = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, __file__, "--serve", kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        asyncio.run(send_many(port, wire, max(2, count // 10)))  # warm-up
        before = cpu_seconds(child.pid)
        elapsed = asyncio.run(send_many(port, wire, count))
        cpu = cpu_seconds(child.pid) - before
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    return cpu / count, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--serve", choices=["stock", "fast"], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure (median kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    cases = [("10 KiB", 10 * 1024, 1000), ("1 MiB", 1024 * 1024, 60)]
    print(f"{'size':>7} {'reader':>6} {'CPU ms/msg':>11} {'msg/s (1 conn)':>15}")
    for label, size, count in cases:
        wire = stuff(build_message(size))
        count = max(4, int(count * args.scale))
        results = {}
        for kind in ("stock", "fast"):
            runs = sorted(measure(kind, wire, count) for _ in range(args.rounds))
            cpu, rate = runs[len(runs) // 2]
            results[kind] = cpu
            print(f"{label:>7} {kind:>6} {cpu * 1000:>11.3f} {rate:>15.1f}")
        print(f"{label:>7} speed-up (CPU): {results['stock'] / max(results['fast'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
