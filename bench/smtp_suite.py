"""SMTP acceptance suite: a fresh ``mssante`` server, concurrency 1/8/32 x 10 KiB/1 MiB.

Steps: ``mssante init`` a temporary data dir, ``mssante pro add`` one professional (who sends
to themself unless ``--rcpt`` says otherwise), ``mssante serve`` on ephemeral 127.0.0.1 ports,
then ``bench/smtp_load.py`` against the submission port (STARTTLS verified with
``DIR/tls/ca.pem``, AUTH PLAIN) for each load, and a table. With ``--with-null`` the same loads
run against ``bench/null_server.py`` (aiosmtpd storing nothing) in the same session, so the
ratios can be set beside PERFORMANCE.md's.

    .venv/bin/python bench/smtp_suite.py [--duration 10] [--with-null] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PY = sys.executable
MSSANTE = [PY, "-m", "mailserver"]

# PERFORMANCE.md, "Postfix -> Dovecot delivered (sustained)" column (msg/s).
REFERENCE = {("10k", 1): 164, ("10k", 8): 529, ("10k", 32): 541,
             ("1m", 1): 82, ("1m", 8): 124, ("1m", 32): 122}
PASSWORD = "bench-Password-2026!"  # noqa: S105 - throw-away account in a temporary data dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"port {port} not listening after {timeout} s")


def luhn_rpps(body: str) -> str:
    """Append the Luhn check digit to a 10-digit RPPS body."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def run(cmd: list[str], stdin: bytes | None = None) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, input=stdin)  # noqa: S603


def prepare(data_dir: Path, domain: str, sender: str) -> None:
    run([*MSSANTE, "init", "--data-dir", str(data_dir), "--domain", domain])
    run([*MSSANTE, "pro", "add", "--data-dir", str(data_dir), "--rpps", luhn_rpps("1000000001"),
         "--email", sender, "--name", "Dr Bench Test", "--profession", "10",
         "--password-stdin"], stdin=PASSWORD.encode())


def load(port: int, size: str, concurrency: int, args: argparse.Namespace, *, tls_args: list[str],
         auth: list[str], pid: int) -> dict[str, Any]:
    cmd = [PY, str(BENCH / "smtp_load.py"), "--port", str(port), "--size", size,
           "--concurrency", str(concurrency),
           "--messages-per-connection", str(args.messages_per_connection),
           "--from", args.sender, "--rcpt", args.rcpt or args.sender,
           "--server-pid", str(pid), "--json", *tls_args, *auth]
    cmd += ["--count", str(args.count)] if args.count else ["--duration", str(args.duration)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout  # noqa: S603
    return dict(json.loads(out))


def table(rows: list[tuple[str, int, dict[str, Any], dict[str, Any] | None]]) -> None:
    head = (f"{'load':>5} {'conc':>4} {'msg/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
            f"{'errors':>6} {'RSS MiB':>7} {'ref':>5} {'x ref':>6}")
    if any(null for *_, null in rows):
        head += f" {'null msg/s':>10} {'x null':>6}"
    print(head)
    for size, conc, r, null in rows:
        rate = float(r["msg_per_s"])
        ref = REFERENCE[(size, conc)]
        rss = r.get("server_peak_rss_kib")
        errors = sum(dict(r["errors"]).values())
        line = (f"{size:>5} {conc:>4} {rate:>8.1f} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} "
                f"{r['p99_ms']:>7.2f} {errors:>6} "
                f"{(int(rss) / 1024 if rss else float('nan')):>7.1f} {ref:>5} {rate / ref:>6.2f}")
        if null:
            nrate = float(null["msg_per_s"])
            line += f" {nrate:>10.1f} {rate / nrate if nrate else float('nan'):>6.2f}"
        print(line)
    print("ref = PERFORMANCE.md Postfix->Dovecot delivered (other machine: compare ratios to the "
          "null server run in this session).")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="use this (empty) directory instead of a temp one")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--domain", default="bench.mssante.test")
    p.add_argument("--sender", default=None, help="the professional's address")
    p.add_argument("--rcpt", default=None, help="recipient (default: the sender)")
    p.add_argument("--sizes", default="10k,1m")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--count", type=int, help="messages per load instead of --duration")
    p.add_argument("--messages-per-connection", type=int, default=10)
    p.add_argument("--with-null", action="store_true",
                   help="also run the loads against an aiosmtpd server that stores nothing")
    args = p.parse_args()
    args.sender = args.sender or f"dr.bench@{args.domain}"
    sizes = args.sizes.split(",")
    concs = [int(c) for c in args.concurrency.split(",")]
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent))

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="mssante-bench-"))
        data_dir = tmp / "data"
    prepare(data_dir, args.domain, args.sender)
    pw_file = data_dir / "bench-password.txt"
    pw_file.write_text(PASSWORD)
    sub_port, smtp_port = free_port(), free_port()
    server = subprocess.Popen(  # noqa: S603
        [*MSSANTE, "--log-level", "WARNING", "serve", "--data-dir", str(data_dir),
         "--submission", f"127.0.0.1:{sub_port}", "--smtp", f"127.0.0.1:{smtp_port}"], env=env)
    results = {}
    try:
        wait_port(sub_port, server)
        tls = ["--starttls", "--cafile", str(data_dir / "tls" / "ca.pem"),
               "--tls-name", "127.0.0.1"]
        auth = ["--user", args.sender, "--password-file", str(pw_file)]
        for size in sizes:
            for conc in concs:
                print(f"mssante: {size} x {conc} ...", file=sys.stderr)
                results[(size, conc)] = load(sub_port, size, conc, args, tls_args=tls, auth=auth,
                                             pid=server.pid)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    nulls: dict[tuple[str, int], dict[str, Any]] = {}
    if args.with_null:
        ca = data_dir / "null-ca.pem"
        null = subprocess.Popen(  # noqa: S603
            [PY, str(BENCH / "null_server.py"), "--impl", "stock", "--tls", "--ca-out", str(ca)],
            stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert null.stdout is not None
            port = int(null.stdout.readline())
            tls = ["--starttls", "--cafile", str(ca), "--tls-name", "127.0.0.1"]
            auth = ["--user", "bench", "--password", "x"]
            for size in sizes:
                for conc in concs:
                    print(f"null: {size} x {conc} ...", file=sys.stderr)
                    nulls[(size, conc)] = load(port, size, conc, args, tls_args=tls, auth=auth,
                                               pid=null.pid)
        finally:
            null.terminate()
            null.wait(10)
    table([(s, c, results[(s, c)], nulls.get((s, c))) for s in sizes for c in concs])
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    elif args.keep:
        print(f"data directory kept: {data_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
