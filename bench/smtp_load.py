"""SMTP load generator: accepted messages per second and DATA-to-250 latency.

Plain asyncio streams (no SMTP library in the hot path), N concurrent connections, each sending
``--messages-per-connection`` messages then reconnecting. A realistic MIME message (text part +
base64 attachment) is built and dot-stuffed once; every message gets its own Message-ID.

    .venv/bin/python bench/smtp_load.py --port 587 --starttls --cafile DIR/tls/ca.pem \\
        --user pro@example.org --password-file pw.txt --from pro@example.org \\
        --rcpt other@example.org --size 10k --concurrency 8 --duration 10 --server-pid PID

Latency is measured from the moment the end-of-data marker has been handed to the kernel to
the 250 reply. ``--processes P`` spreads the connections over P client processes so the
client is not the bottleneck; the client's own CPU use is printed to check it.
``--acked-file PATH`` writes the Message-ID of every message acknowledged (250), one a line, to
check afterwards that each was stored once (``bench/scale_processes.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mime import build_message, parse_size, stuff  # noqa: E402


class SmtpError(Exception):
    """An unexpected reply; str() is the reply class used to tally errors."""


@dataclass
class Stats:
    accepted: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    connections: int = 0
    acked: list[str] = field(default_factory=list)


@dataclass
class Shared:
    """Work left, shared by the workers of one process."""

    deadline: float | None
    remaining: int | None

    def take(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True

    def give_back(self) -> None:
        if self.remaining is not None:
            self.remaining += 1


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    while True:
        line = await reader.readline()
        if not line:
            raise SmtpError("connection closed")
        if line[3:4] != b"-":
            try:
                return int(line[:3]), line
            except ValueError:
                raise SmtpError("garbled reply") from None


async def expect(reader: asyncio.StreamReader, *codes: int) -> bytes:
    code, line = await read_reply(reader)
    if code not in codes:
        raise SmtpError(f"{code}")
    return line


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Built once per process: loading CA certificates per connection costs milliseconds."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # benchmark against a test CA: verification off on request
    return ctx


async def session(args: argparse.Namespace, body: bytes, shared: Shared, stats: Stats,
                  worker: int) -> None:
    """One connection: greeting, EHLO, STARTTLS, AUTH, up to N messages, QUIT."""
    reader, writer = await asyncio.open_connection(args.host, args.port)
    stats.connections += 1
    try:
        await expect(reader, 220)
        writer.write(b"EHLO bench.example.org\r\n")
        await expect(reader, 250)
        if args.starttls:
            writer.write(b"STARTTLS\r\n")
            await expect(reader, 220)
            await writer.start_tls(args.ssl_context, server_hostname=args.tls_name)
            writer.write(b"EHLO bench.example.org\r\n")
            await expect(reader, 250)
        if args.user:
            token = base64.b64encode(f"\0{args.user}\0{args.password}".encode())
            writer.write(b"AUTH PLAIN " + token + b"\r\n")
            await expect(reader, 235)
        mail = f"MAIL FROM:<{args.sender}> SIZE={len(body)}\r\n".encode()
        rcpts = [f"RCPT TO:<{r}>\r\n".encode() for r in args.rcpt]
        for seq in range(args.messages_per_connection):
            if not shared.take():
                break
            try:
                writer.write(mail)
                await expect(reader, 250)
                for rcpt in rcpts:
                    writer.write(rcpt)
                    await expect(reader, 250, 251)
                writer.write(b"DATA\r\n")
                await expect(reader, 354)
                mid = b"Message-ID: <%d.%d.%d.%d@bench.example.org>\r\n" % (
                    os.getpid(), worker, stats.connections, seq)
                writer.write(mid)
                writer.write(body)
                await writer.drain()
                sent = time.perf_counter()
                await expect(reader, 250)
                stats.latencies.append(time.perf_counter() - sent)
                stats.accepted += 1
                if args.acked_file:
                    stats.acked.append(mid[len(b"Message-ID: "):].strip().decode())
            except BaseException:
                shared.give_back()
                raise
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await read_reply(reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


async def worker_loop(args: argparse.Namespace, body: bytes, shared: Shared, stats: Stats,
                      worker: int) -> None:
    while shared.take():
        shared.give_back()
        try:
            await session(args, body, shared, stats, worker)
        except SmtpError as exc:
            stats.errors[str(exc)] += 1
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            stats.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)


async def run_local(args: argparse.Namespace) -> dict[str, Any]:
    content = build_message(parse_size(args.size), sender=args.sender, rcpt=args.rcpt[0])
    body = stuff(content)
    deadline = time.monotonic() + args.duration if args.duration else None
    shared = Shared(deadline, args.count)
    stats = Stats()
    cpu0 = time.process_time()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(args.concurrency):
            tg.create_task(worker_loop(args, body, shared, stats, i))
    elapsed = time.perf_counter() - started
    return {
        "accepted": stats.accepted,
        "elapsed": elapsed,
        "latencies": stats.latencies,
        "errors": dict(stats.errors),
        "connections": stats.connections,
        "client_cpu": time.process_time() - cpu0,
        "message_bytes": len(content),
        "acked": stats.acked,
    }


def run_processes(args: argparse.Namespace) -> dict[str, Any]:
    """Split the connections over several client processes and merge their results."""
    procs = []
    per = [args.concurrency // args.processes + (i < args.concurrency % args.processes)
           for i in range(args.processes)]
    counts = None
    if args.count:
        counts = [args.count * p // args.concurrency for p in per]
        counts[0] += args.count - sum(counts)
    for i, conc in enumerate(per):
        if conc == 0:
            continue
        cmd = [sys.executable, __file__, "--_child", "--processes", "1",
               "--concurrency", str(conc)] + args.passthrough
        if counts:
            cmd += ["--count", str(counts[i])]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))  # noqa: S603
    results = [json.loads(p.communicate()[0]) for p in procs]
    merged: dict[str, Any] = {
        "accepted": sum(r["accepted"] for r in results),
        "elapsed": max(r["elapsed"] for r in results),
        "latencies": [x for r in results for x in r["latencies"]],
        "errors": dict(sum((collections.Counter(r["errors"]) for r in results),
                           collections.Counter())),
        "connections": sum(r["connections"] for r in results),
        "client_cpu": sum(r["client_cpu"] for r in results),
        "message_bytes": results[0]["message_bytes"],
        "acked": [m for r in results for m in r["acked"]],
    }
    return merged


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def summarise(result: dict[str, Any], server_pid: int | None) -> dict[str, Any]:
    lat = sorted(result["latencies"])
    elapsed = float(result["elapsed"])
    summary = {
        "accepted": result["accepted"],
        "msg_per_s": result["accepted"] / elapsed if elapsed else 0.0,
        "p50_ms": percentile(lat, 0.50) * 1000,
        "p95_ms": percentile(lat, 0.95) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "errors": result["errors"],
        "connections": result["connections"],
        "elapsed_s": elapsed,
        "client_cpu_pct": 100 * float(result["client_cpu"]) / elapsed if elapsed else 0.0,
        "message_bytes": result["message_bytes"],
        "server_peak_rss_kib": peak_rss_kib(server_pid) if server_pid else None,
    }
    return summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--user", help="AUTH PLAIN user (sent after STARTTLS)")
    p.add_argument("--password", default="")
    p.add_argument("--password-file", help="read the password from this file")
    p.add_argument("--from", dest="sender", default="bench@example.org")
    p.add_argument("--rcpt", action="append", help="recipient (repeatable)")
    p.add_argument("--size", default="10k", help="10k, 1m or a byte count")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--messages-per-connection", type=int, default=10)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--duration", type=float, help="seconds to run")
    group.add_argument("--count", type=int, help="messages to send")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cafile", help="verify the server against this CA (else no verification)")
    p.add_argument("--tls-name", default=None, help="server name for SNI/verification")
    p.add_argument("--server-pid", type=int, help="report this process's peak RSS (VmHWM)")
    p.add_argument("--processes", type=int, default=1, help="client processes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--acked-file", help="write each acknowledged Message-ID to this file")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.duration and not args.count:
        args.duration = 10.0
    if not args.rcpt:
        p.error("at least one --rcpt")
    if args.password_file:
        args.password = Path(args.password_file).read_text().strip()
    if args.tls_name is None:
        args.tls_name = args.host
    args.ssl_context = tls_context(args.cafile) if args.starttls else None
    # Arguments forwarded to child processes (not concurrency/count/processes).
    skip = {"--concurrency", "--count", "--processes", "--server-pid"}
    passthrough: list[str] = []
    it = iter(argv)
    for a in it:
        name = a.split("=", 1)[0]
        if name in skip:
            if "=" not in a:
                next(it, None)
            continue
        if name in {"--json", "--_child"}:
            continue
        passthrough.append(a)
    args.passthrough = passthrough
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args._child:
        print(json.dumps(asyncio.run(run_local(args))))
        return
    if args.processes > 1:
        result = run_processes(args)
    else:
        result = asyncio.run(run_local(args))
    summary = summarise(result, args.server_pid)
    if args.acked_file:
        Path(args.acked_file).write_text("".join(f"{m}\n" for m in result["acked"]))
    if args.json:
        print(json.dumps(summary))
        return
    print(f"size={args.size} ({summary['message_bytes']} B) concurrency={args.concurrency} "
          f"processes={args.processes} tls={'yes' if args.starttls else 'no'}")
    print(f"accepted   {summary['accepted']} in {summary['elapsed_s']:.2f} s "
          f"= {summary['msg_per_s']:.1f} msg/s over {summary['connections']} connections")
    print(f"latency    p50 {summary['p50_ms']:.2f} ms  p95 {summary['p95_ms']:.2f} ms  "
          f"p99 {summary['p99_ms']:.2f} ms  (end of DATA -> 250)")
    print(f"errors     {summary['errors'] or 'none'}")
    print(f"client CPU {summary['client_cpu_pct']:.0f}% of one core")
    if summary["server_peak_rss_kib"] is not None:
        print(f"server     peak RSS {summary['server_peak_rss_kib'] / 1024:.1f} MiB (VmHWM)")


if __name__ == "__main__":
    main()
