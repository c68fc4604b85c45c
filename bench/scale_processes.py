"""Scale-out on PostgreSQL: the same SMTP load against ``mssante serve --workers N``, N = 1, 2, 3,
then a worker killed (SIGKILL) under load and every acknowledged message checked stored once.

For each N a fresh PostgreSQL database and data directory (``smtp_suite.start_mssante``: init,
one professional, serve), then ``bench/smtp_load.py`` (STARTTLS, AUTH PLAIN, the professional
writing to themself) for ``--duration`` seconds: accepted msg/s, p50/p99 latency from the end of
DATA to the 250, and the server's CPU (parent and workers; PostgreSQL's own is not counted).

The kill run (``--kill-workers``, 2 by default; 0 skips it): the same load with every accepted
Message-ID written down (``smtp_load.py --acked-file``); a third of the way in one worker process
(a child of the supervisor, not the supervisor) gets SIGKILL; the supervisor starts another
(its restart time is printed). When the load is over, the INBOX is read over IMAP (STARTTLS)
and each acknowledged Message-ID must be there exactly once: ``lost`` and ``duplicated`` must
be 0 (``stored, not acknowledged`` may not be: a message committed just before the kill whose
250 never left; the client would send it again).

How to run (PostgreSQL reachable, the user allowed to create databases):

    PYTHONPATH=. .venv/bin/python bench/scale_processes.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        [--workers 1,2,3] [--duration 20] [--concurrency 16] [--size 10k] [--processes 2] \\
        [--rounds 1] [--kill-workers 2]

``--database-url`` names the server to create the databases on (through its database, usually
``postgres``); each run's database is ``mssante_scale_<random>``, dropped at the end.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import imaplib
import os
import re
import signal
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import smtp_suite

BENCH = Path(__file__).resolve().parent


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the worker processes of a supervisor)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return sorted(out)


def sockets(pid: int) -> int:
    """How many sockets ``pid`` holds (listeners, database connections, client sessions)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                count += os.readlink(fd).startswith("socket:")
    return count


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def inbox_message_ids(port: int, data_dir: Path, user: str, password: str) -> list[str]:
    """Every Message-ID in the INBOX, over IMAP with STARTTLS (duplicates kept)."""
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.starttls(ctx)
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            imap.logout()
    blob = b"".join(part[1] for part in data if isinstance(part, tuple))
    return [m.decode() for m in re.findall(rb"Message-ID: (<[^>]+>)", blob, re.IGNORECASE)]


def server_args(args: argparse.Namespace, workers: int, url: str) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "workers": workers, "database_url": url})


def measure(args: argparse.Namespace, workers: int, env: dict[str, str]) -> dict[str, Any]:
    """One load against ``serve --workers workers`` on a fresh database."""
    with smtp_suite.fresh_database(args.database_url, "mssante_scale") as url, \
            contextlib.ExitStack() as stack, \
            tempfile.TemporaryDirectory(prefix="mssante-scale-") as tmp:
        target = smtp_suite.start_mssante(stack, Path(tmp) / "data",
                                          server_args(args, workers, url), env)
        load = load_average()
        result = smtp_suite.load(target, args.size, args.concurrency, args,
                                 ("--processes", str(args.processes)))
        result["load_average"] = load
        return result


def kill_run(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The load with one worker SIGKILLed a third of the way in; the stored-once check."""
    workers = args.kill_workers
    with smtp_suite.fresh_database(args.database_url, "mssante_scale") as url, \
            contextlib.ExitStack() as stack, \
            tempfile.TemporaryDirectory(prefix="mssante-scale-") as tmp:
        data_dir = Path(tmp) / "data"
        imap_port = smtp_suite.free_port()
        target = smtp_suite.start_mssante(stack, data_dir, server_args(args, workers, url), env,
                                          ("--imap", f"127.0.0.1:{imap_port}"))
        assert target.pid is not None
        acked_file = Path(tmp) / "acked.txt"
        before = children(target.pid)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(smtp_suite.load, target, args.size, args.concurrency, args,
                                  ("--processes", str(args.processes),
                                   "--acked-file", str(acked_file)))
            time.sleep(args.duration / 3)
            # The worker holding the most sockets: the one serving the most sessions now.
            held = {pid: sockets(pid) for pid in children(target.pid)}
            victim = max(held, key=lambda pid: held[pid])
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            restarted = None
            while time.monotonic() - killed_at < args.duration:
                now = children(target.pid)
                if victim not in now and len(now) == len(before):
                    restarted = time.monotonic() - killed_at
                    break
                time.sleep(0.05)
            result = running.result()
        acked = acked_file.read_text().split()
        stored = inbox_message_ids(imap_port, data_dir, args.sender, smtp_suite.PASSWORD)
    counts = collections.Counter(stored)
    return {**result, "workers": workers, "killed_pid": victim, "held": held,
            "restart_s": restarted,
            "acked": len(acked), "stored": len(stored),
            "lost": len(set(acked) - set(counts)),
            "duplicated": sum(1 for n in counts.values() if n > 1),
            "stored_not_acked": len(set(counts) - set(acked))}


def cpu_per_message(r: dict[str, Any]) -> float:
    """The server's CPU (supervisor and workers) per accepted message, in ms."""
    return 1000 * float(r["cpu_s"]) / max(int(r["accepted"]), 1)


def table(args: argparse.Namespace, rows: dict[int, dict[str, Any]]) -> None:
    """The median run of each N, as a Markdown table."""
    print(f"\n{args.size} x {args.concurrency} connections ({args.processes} client processes), "
          f"{args.duration:.0f} s a run, median of {args.rounds} round(s), a fresh PostgreSQL "
          "database each run")
    print("| workers | msg/s | × first | p50 ms | p99 ms | server CPU ms/msg | load avg |")
    print("|---|---|---|---|---|---|---|")
    base = next(iter(rows.values()))["msg_per_s"] or float("nan")
    for n, r in rows.items():
        print(f"| {n} | {r['msg_per_s']:.1f} | {r['msg_per_s'] / base:.2f} "
              f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {cpu_per_message(r):.1f} "
              f"| {r['load_average']} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", required=True,
                   help="postgresql+asyncpg://user@host:port/postgres (databases created there)")
    p.add_argument("--workers", default="1,2,3", help="the N of each run ('': the kill run only)")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--size", default="10k")
    p.add_argument("--processes", type=int, default=2, help="client processes")
    p.add_argument("--messages-per-connection", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1, help="runs per N (the median is kept)")
    p.add_argument("--kill-workers", type=int, default=2, help="N of the kill run (0: none)")
    p.add_argument("--domain", default="bench.mssante.test")
    args = p.parse_args()
    args.sender = f"dr.bench@{args.domain}"
    args.rcpt, args.count = None, None
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent))
    print(f"cores: {os.cpu_count()}", file=sys.stderr)
    ns = [int(w) for w in args.workers.split(",") if w]
    runs: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for _ in range(args.rounds):  # the N take turns, so the machine's load shifts all alike
        for n in ns:
            r = measure(args, n, env)
            runs[n].append(r)
            print(f"workers={n}: {r['msg_per_s']:.1f} msg/s, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, {cpu_per_message(r):.1f} ms CPU/msg, "
                  f"errors {r['errors'] or 'none'}, load average {r['load_average']}",
                  file=sys.stderr)
    rows = {n: smtp_suite.median(runs[n], "mssante") for n in ns}
    if ns:
        table(args, rows)
    if args.kill_workers:
        k = kill_run(args, env)
        restart = f"{k['restart_s']:.2f} s" if k["restart_s"] is not None else "not seen"
        print(f"\nkill -9 of worker {k['killed_pid']} of {k['workers']} under load (sockets "
              f"held per worker: {k['held']}): restarted in {restart}; {k['msg_per_s']:.1f} "
              f"msg/s, sessions cut (client errors) {k['errors'] or 'none'}")
        print(f"acknowledged {k['acked']}, stored {k['stored']}: lost {k['lost']}, "
              f"duplicated {k['duplicated']}, stored but not acknowledged "
              f"{k['stored_not_acked']}")
        ok = k["lost"] == 0 and k["duplicated"] == 0 and k["acked"] > 0
        print("check: PASS" if ok else "check: FAIL")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
