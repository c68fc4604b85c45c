"""SMTP acceptance suite: mssante beside Postfix -> Dovecot, concurrency 1/8/32 x 10 KiB/1 MiB.

Steps: ``mssante init`` a temporary data dir, ``mssante pro add`` one professional (who sends
to themself unless ``--rcpt`` says otherwise), ``mssante serve`` on ephemeral 127.0.0.1 ports;
then the reference, a private Debian Postfix delivering by LMTP to a private Dovecot
(``bench/smtp_reference.py``: needs root, ``postfix``, ``dovecot-imapd`` and ``dovecot-lmtpd``;
``--no-reference`` skips it). For each load, ``bench/smtp_load.py`` drives each server's
submission port in turn, the same way (STARTTLS verified against the server's CA, AUTH PLAIN,
same message, same messages per connection), and the reference is given time to drain its queue
before the next load. With ``--with-null`` the loads also run against ``bench/null_server.py``
(aiosmtpd storing nothing). The table's ratios are against the reference measured in this run;
``--rounds N`` repeats each load N times (servers taking turns) and keeps the median rounds.

    .venv/bin/python bench/smtp_suite.py [--duration 10] [--rounds 3] [--no-reference]
        [--with-null] [--keep] [--workers N] [--database-url postgresql+asyncpg://...]

``--workers N`` starts ``mssante serve --workers N``; ``--database-url`` puts the server's
store in a new database on that PostgreSQL server (``mssante_smtpbench_<pid>``, dropped at the
end) instead of SQLite in the data dir (``--workers`` above 1 needs PostgreSQL).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import smtp_reference

BENCH = Path(__file__).resolve().parent
PY = sys.executable
MSSANTE = [PY, "-m", "mailserver"]
PASSWORD = "bench-Password-2026!"  # noqa: S105 - throw-away account in a temporary data dir
NAN = float("nan")

Result = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A server the loads run against: its submission port and how to log in."""

    name: str
    port: int
    tls: tuple[str, ...]
    auth: tuple[str, ...]
    pid: int | None  # peak RSS reported for this process
    tree: tuple[int, ...]  # CPU time counted for these processes and their descendants


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


def prepare(data_dir: Path, domain: str, sender: str, database_url: str | None) -> None:
    run([*MSSANTE, "init", "--data-dir", str(data_dir), "--domain", domain])
    if database_url:
        toml = data_dir / "mssante.toml"
        toml.write_text(toml.read_text().replace(
            "# database_url = ", f'database_url = "{database_url}"  # ', 1))
    run([*MSSANTE, "pro", "add", "--data-dir", str(data_dir), "--rpps", luhn_rpps("1000000001"),
         "--email", sender, "--name", "Dr Bench Test", "--profession", "10",
         "--password-stdin"], stdin=PASSWORD.encode())


def pg_dsn(url: str) -> str:
    """asyncpg's DSN from a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_admin(url: str, sql: str) -> None:
    """Run one statement on the server of ``url`` (CREATE/DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead (its query, e.g. ``?host=/run/...`` for a
    Unix socket, kept)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database or ""


@contextlib.contextmanager
def fresh_database(url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database ``<prefix>_<pid>`` on the PostgreSQL server of ``url`` (a
    SQLAlchemy ``postgresql+asyncpg://`` URL); its URL; dropped afterwards unless ``keep``."""
    import asyncio

    name = f"{prefix}_{os.getpid()}"
    asyncio.run(pg_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(url, name)
    finally:
        if keep:
            print(f"kept: database {name}")
        else:
            with contextlib.suppress(Exception):
                asyncio.run(pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def stop(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_mssante(stack: contextlib.ExitStack, data_dir: Path, args: argparse.Namespace,
                  env: dict[str, str], extra: tuple[str, ...] = ()) -> Target:
    """``mssante serve`` on fresh ports; ``extra``: more arguments for ``serve`` (listeners).
    With ``--database-url``, the store is a new database on that server (dropped at the end)."""
    url = stack.enter_context(fresh_database(args.database_url, "mssante_smtpbench")) \
        if args.database_url else None
    prepare(data_dir, args.domain, args.sender, url)
    pw_file = data_dir / "bench-password.txt"
    pw_file.write_text(PASSWORD)
    sub_port, smtp_port = free_port(), free_port()
    server = subprocess.Popen(  # noqa: S603
        [*MSSANTE, "--log-level", "WARNING", "serve", "--data-dir", str(data_dir),
         "--submission", f"127.0.0.1:{sub_port}", "--smtp", f"127.0.0.1:{smtp_port}",
         "--workers", str(args.workers), *extra], env=env)
    stack.callback(stop, server)
    wait_port(sub_port, server)
    if args.workers > 1:  # the parent listens at once; give every worker time to start
        time.sleep(5)
    return Target("mssante", sub_port,
                  ("--starttls", "--cafile", str(data_dir / "tls" / "ca.pem"),
                   "--tls-name", "127.0.0.1"),
                  ("--user", args.sender, "--password-file", str(pw_file)), server.pid,
                  (server.pid,))


def start_reference(stack: contextlib.ExitStack,
                    args: argparse.Namespace) -> tuple[smtp_reference.Reference, Target]:
    ref = smtp_reference.start(args.domain, args.sender, PASSWORD)
    if not args.keep:
        stack.callback(shutil.rmtree, ref.root, ignore_errors=True)
    stack.callback(ref.stop)
    print(f"reference: {ref.versions} in {ref.root}, submission port {ref.port}", file=sys.stderr)
    return ref, Target("reference", ref.port,
                       ("--starttls", "--cafile", str(ref.cafile), "--tls-name", "127.0.0.1"),
                       ("--user", args.sender, "--password-file", str(ref.password_file)),
                       None, ref.pids())


def start_null(stack: contextlib.ExitStack, data_dir: Path, env: dict[str, str]) -> Target:
    ca = data_dir / "null-ca.pem"
    null = subprocess.Popen(  # noqa: S603
        [PY, str(BENCH / "null_server.py"), "--impl", "stock", "--tls", "--ca-out", str(ca)],
        stdout=subprocess.PIPE, text=True, env=env)
    stack.callback(stop, null, 10)
    assert null.stdout is not None
    port = int(null.stdout.readline())
    return Target("null", port, ("--starttls", "--cafile", str(ca), "--tls-name", "127.0.0.1"),
                  ("--user", "bench", "--password", "x"), null.pid, (null.pid,))


def cpu_seconds(roots: tuple[int, ...]) -> float:
    """User + system CPU of the process trees under ``roots``, waited-for children included."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # proc(5): ppid is field 4, utime stime cutime cstime are fields 14-17.
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)
    ticks, todo = 0, [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        ticks += stats[pid][1]
        todo += children[pid]
    return ticks / os.sysconf("SC_CLK_TCK")


def load(target: Target, size: str, concurrency: int, args: argparse.Namespace,
         extra: tuple[str, ...] = ()) -> Result:
    """One ``smtp_load.py`` run against ``target`` (``extra``: more of its arguments)."""
    print(f"{target.name}: {size} x {concurrency} ...", file=sys.stderr)
    cmd = [PY, str(BENCH / "smtp_load.py"), "--port", str(target.port), "--size", size,
           "--concurrency", str(concurrency),
           "--messages-per-connection", str(args.messages_per_connection),
           "--from", args.sender, "--rcpt", args.rcpt or args.sender,
           "--json", *target.tls, *target.auth, *extra]
    cmd += ["--server-pid", str(target.pid)] if target.pid else []
    cmd += ["--count", str(args.count)] if args.count else ["--duration", str(args.duration)]
    cpu = cpu_seconds(target.tree)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout  # noqa: S603
    result = dict(json.loads(out))
    result["cpu_s"] = cpu_seconds(target.tree) - cpu
    return result


def load_reference(ref: smtp_reference.Reference, target: Target, size: str, concurrency: int,
                   args: argparse.Namespace) -> Result:
    """One load at Postfix, then wait for Dovecot to have stored every accepted message.

    The delivered rate is the accepted count over the time from the load's first connection
    to the last message landing in the maildir (queue drained); the CPU time is Postfix's and
    Dovecot's over the same span.
    """
    before, cpu = ref.delivered(), cpu_seconds(target.tree)
    result = load(target, size, concurrency, args)
    returned = time.monotonic()
    started = returned - float(result["elapsed_s"])
    accepted = int(result["accepted"])
    done = ref.wait_delivered(before + accepted, timeout=max(120.0, 20 * result["elapsed_s"]))
    result["cpu_s"] = cpu_seconds(target.tree) - cpu
    result["drain_s"] = done - returned if done else NAN
    result["delivered_per_s"] = accepted / (done - started) if done else NAN
    if done is None:
        print(f"reference: only {ref.delivered() - before} of {accepted} delivered before the "
              "timeout", file=sys.stderr)
    return result


def median(runs: list[Result], name: str) -> Result:
    """The round with the median rate (delivered rate for the reference)."""
    key = "delivered_per_s" if name == "reference" else "msg_per_s"
    return sorted(runs, key=lambda r: float(r[key]))[len(runs) // 2]


def round_line(size: str, conc: int, last: dict[str, Result]) -> str:
    """One round's figures (the table keeps the median rounds)."""
    ours = float(last["mssante"]["msg_per_s"])
    line = f"round: {size} x {conc}: mssante {ours:.1f} msg/s"
    if "reference" in last:
        dlv = float(last["reference"]["delivered_per_s"])
        line += f", reference {dlv:.1f} delivered/s, x dlv {ratio(ours, dlv):.2f}"
    return line


def ratio(a: float, b: float) -> float:
    return a / b if b else NAN


def errors(r: Result) -> int:
    return sum(dict(r["errors"]).values())


def cpu_ms(r: Result) -> float:
    """Server CPU per accepted message."""
    return 1000 * float(r["cpu_s"]) / int(r["accepted"]) if r["accepted"] else NAN


def table(sizes: list[str], concs: list[int], results: dict[str, dict[tuple[str, int], Result]],
          versions: str | None) -> None:
    ours, ref, null = results["mssante"], results.get("reference"), results.get("null")
    head = (f"{'load':>5} {'conc':>4} {'msg/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
            f"{'errors':>6} {'RSS MiB':>7} {'cpu ms':>6}")
    if ref:
        head += f" {'ref acc':>8} {'ref dlv':>8} {'x dlv':>6} {'x acc':>6} {'ref cpu':>7}"
    if null:
        head += f" {'null msg/s':>10} {'x null':>6}"
    print(head)
    for size in sizes:
        for conc in concs:
            r = ours[(size, conc)]
            rate = float(r["msg_per_s"])
            rss = r.get("server_peak_rss_kib")
            line = (f"{size:>5} {conc:>4} {rate:>8.1f} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} "
                    f"{r['p99_ms']:>7.2f} {errors(r):>6} "
                    f"{(int(rss) / 1024 if rss else NAN):>7.1f} {cpu_ms(r):>6.2f}")
            if ref:
                acc = float(ref[(size, conc)]["msg_per_s"])
                dlv = float(ref[(size, conc)]["delivered_per_s"])
                line += (f" {acc:>8.1f} {dlv:>8.1f} {ratio(rate, dlv):>6.2f} "
                         f"{ratio(rate, acc):>6.2f} {cpu_ms(ref[(size, conc)]):>7.2f}")
            if null:
                nrate = float(null[(size, conc)]["msg_per_s"])
                line += f" {nrate:>10.1f} {ratio(rate, nrate):>6.2f}"
            print(line)
    print("msg/s: mssante's 250s per second; its 250 comes after the message is committed "
          "(fsync'd) in the\n  recipient's mailbox and the sender's Sent folder.\n"
          "cpu ms: server CPU time (user + system, all processes) per message; less sensitive "
          "than msg/s\n  to other work on the machine.")
    if ref:
        print(f"ref = {versions}, measured in this run, one load after the other:\n"
              "  ref acc: Postfix's 250s per second (queue file fsync'd; not yet delivered);\n"
              "  ref dlv: messages stored (fsync'd) in Dovecot's maildir per second, from the "
              "load's start\n  until Postfix's queue drained.\n"
              "x dlv = msg/s / ref dlv is the like-for-like ratio: both count messages durably "
              "in the mailbox.\nx acc = msg/s / ref acc compares what the sending client sees; "
              "Postfix has only queued the message.")
        ref_errors = {k: errors(r) for k, r in ref.items() if errors(r)}
        if ref_errors:
            print(f"reference load errors: {ref_errors}")


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
    p.add_argument("--rounds", type=int, default=1,
                   help="run each load N times, servers taking turns, and keep each server's "
                        "median round\n(the machine is shared: other work shifts the figures)")
    p.add_argument("--with-reference", dest="reference", action="store_true", default=True,
                   help="also run Postfix -> Dovecot (the default)")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the reference (ratios are then not printed)")
    p.add_argument("--with-null", action="store_true",
                   help="also run the loads against an aiosmtpd server that stores nothing")
    p.add_argument("--workers", type=int, default=1, help="mssante serve --workers N")
    p.add_argument("--database-url", default=None,
                   help="a PostgreSQL server for mssante's store, e.g. "
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres: the bench "
                        "creates its own database there (default: SQLite)")
    args = p.parse_args()
    args.sender = args.sender or f"dr.bench@{args.domain}"
    if args.reference and args.rcpt and args.rcpt != args.sender:
        p.error("--rcpt: the reference has one mailbox, the sender's (or use --no-reference)")
    if args.reference and (why := smtp_reference.missing()):
        p.error(f"reference unavailable: {why}; or pass --no-reference")
    sizes = args.sizes.split(",")
    concs = [int(c) for c in args.concurrency.split(",")]
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent))

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="mssante-bench-"))
        data_dir = tmp / "data"
    results: dict[str, dict[tuple[str, int], Result]] = {"mssante": {}}
    versions = None
    with contextlib.ExitStack() as stack:
        ours = start_mssante(stack, data_dir, args, env)
        ref = ref_target = null = None
        if args.reference:
            ref, ref_target = start_reference(stack, args)
            versions = ref.versions
            results["reference"] = {}
        if args.with_null:
            null = start_null(stack, data_dir, env)
            results["null"] = {}
        for size in sizes:
            for conc in concs:
                rounds: dict[str, list[Result]] = collections.defaultdict(list)
                for _ in range(args.rounds):
                    rounds["mssante"].append(load(ours, size, conc, args))
                    if ref and ref_target:
                        rounds["reference"].append(load_reference(ref, ref_target, size, conc,
                                                                  args))
                    if null:
                        rounds["null"].append(load(null, size, conc, args))
                    print(round_line(size, conc, {n: r[-1] for n, r in rounds.items()}),
                          file=sys.stderr)
                for name, runs in rounds.items():
                    results[name][(size, conc)] = median(runs, name)
        if ref:
            for line in ref.problems()[:10]:
                print(f"reference log: {line}", file=sys.stderr)
    table(sizes, concs, results, versions)
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    elif args.keep:
        print(f"data directory kept: {data_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
