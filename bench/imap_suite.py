"""IMAP stress, side by side: ``mssante serve --workers N`` on PostgreSQL beside Dovecot.

Steps: create a fresh PostgreSQL database (``mssante_imapbench_<pid>``, dropped at the end),
``mssante init`` a temporary data dir pointing at it, add one professional, start
``mssante serve --workers N --imaps`` on a free port; start a private Dovecot
(:mod:`dovecot_reference`, needs root and ``dovecot-imapd``). Both mailboxes are prefilled to
``--prefill`` messages, then for each mode (persistent sessions, login every cycle) and each
round, ``bench/imap_stress.py`` runs against ours then against Dovecot, the same way (implicit
TLS, same clients, duration, mix and seed).

Besides commands/s, it prints the server CPU time (user + system) per 1,000 commands: for ours,
the ``serve`` process tree plus the PostgreSQL backends connected to the bench database; for
Dovecot, its master's tree (login, auth and imap processes). CPU per command is much less
sensitive than commands/s to other work on a shared machine.

    .venv/bin/python bench/imap_suite.py [--workers 2] [--clients 5] [--duration 10]
        [--rounds 1] [--prefill 1000] [--modes persistent,login] [--scheme PLAIN]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--no-reference]
        [--json FILE] [--profile DIR]

``--profile DIR`` records each of our runs with ``py-spy record --subprocesses`` (speedscope
files in DIR; the sampling itself costs CPU, so compare CPU figures of runs without it).
"""

# ruff: noqa: S603, S607 - runs the local server, py-spy and the stress client
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dovecot_reference
from smtp_suite import (
    MSSANTE,
    PASSWORD,
    PY,
    cpu_seconds,
    database_name,
    free_port,
    fresh_database,
    prepare,
    stop,
    wait_port,
)

BENCH = Path(__file__).resolve().parent
DOMAIN = "bench.mssante.test"
USER = f"dr.bench@{DOMAIN}"
Result = dict[str, Any]


def backend_cpu(dbname: str) -> float:
    """CPU seconds of the PostgreSQL backends now connected to ``dbname`` (ps title
    ``postgres: [cluster:] user dbname host(port) state``)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
            if not title or title[0] != b"postgres:" or dbname.encode() not in title[1:5]:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Server:
    """A server under test: how imap_stress reaches it and what CPU to count."""

    def __init__(self, name: str, port: int, cafile: Path, user: str, pw_file: Path,
                 roots: tuple[int, ...], dbname: str | None = None) -> None:
        self.name, self.port, self.cafile, self.user, self.pw_file = (
            name, port, cafile, user, pw_file)
        self.roots, self.dbname = roots, dbname

    def cpu(self) -> tuple[float, float]:
        """(server processes, database backends) CPU seconds so far."""
        return cpu_seconds(self.roots), backend_cpu(self.dbname) if self.dbname else 0.0

    def stress(self, args: argparse.Namespace, mode: str, duration: float,
               profile: Path | None = None) -> Result:
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        cmd = [PY, str(BENCH / "imap_stress.py"), "--port", str(self.port), "--cafile",
               str(self.cafile), "--user", self.user, "--password-file", str(self.pw_file),
               "--clients", str(args.clients), "--duration", str(duration), "--prefill",
               str(args.prefill), "--label", self.name, "--seed", str(args.seed),
               "--json", str(out)]
        cmd += ["--login-each-cycle"] if mode == "login" else []
        spy = None
        if profile is not None:
            spy = subprocess.Popen(
                [str(Path(PY).parent / "py-spy"), "record", "--subprocesses", "--nonblocking",
                 "-r", "50", "-f", "speedscope", "-o", str(profile / f"{self.name}-{mode}.json"),
                 "--pid", str(self.roots[0])], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            time.sleep(1)
        cpu0 = self.cpu()
        try:
            subprocess.run(cmd, check=True)
        finally:
            cpu1 = self.cpu()
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
        result: Result = json.loads(out.read_text().splitlines()[-1])
        out.unlink()
        result["server_cpu_s"] = cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]
        result["db_cpu_s"] = cpu1[1] - cpu0[1]
        return result


def start_mssante(stack: contextlib.ExitStack, args: argparse.Namespace) -> Server:
    dbname: str | None = None
    url: str | None = None
    if args.database_url != "sqlite":  # a fresh database beside the given one
        url = stack.enter_context(fresh_database(args.database_url, "mssante_imapbench"))
        dbname = database_name(url)
    tmp = Path(tempfile.mkdtemp(prefix="mssante-imapbench-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    data = tmp / "data"
    prepare(data, DOMAIN, USER, url)
    pw_file = tmp / "pw"
    pw_file.write_text(PASSWORD)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(BENCH.parent))
    server = subprocess.Popen(
        [*MSSANTE, "--log-level", "WARNING", "serve", "--data-dir", str(data),
         "--imaps", f"127.0.0.1:{port}", "--workers", str(args.workers)], env=env)
    stack.callback(stop, server)
    wait_port(port, server)
    if args.workers > 1:  # the parent listens at once; give every worker time to start
        time.sleep(5)
    return Server("mssante", port, data / "tls" / "ca.pem", USER, pw_file, (server.pid,),
                  dbname)


def start_dovecot(stack: contextlib.ExitStack, args: argparse.Namespace) -> Server:
    dv = dovecot_reference.start(args.scheme)
    stack.callback(dv.stop)
    return Server(f"dovecot {dv.version.split()[0]}", dv.imaps_port, dv.cafile,
                  dovecot_reference.USER, dv.root / "pw", (dv.proc.pid,))


def per_1k(r: Result, key: str = "server_cpu_s") -> float:
    return 1000 * float(r[key]) / int(r["total"]) if r["total"] else float("nan")


def report(results: dict[tuple[str, str], list[Result]], servers: list[Server],
           modes: list[str]) -> None:
    """One line per mode: each server's median round, and ours / the reference."""
    print(f"\n{'mode':11} {'server':16} {'cmd/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'errors':>6} "
          f"{'CPU s/1k cmd':>12} {'of it DB':>8} {'ratio':>6}")
    for mode in modes:
        medians = {}
        for srv in servers:
            runs = sorted(results[(srv.name, mode)], key=lambda r: float(r["total_per_s"]))
            medians[srv.name] = runs[len(runs) // 2]
        ours = float(medians[servers[0].name]["total_per_s"])
        for srv in servers:
            r = medians[srv.name]
            rate = float(r["total_per_s"])
            ratio = f"{ours / rate:6.2f}" if srv is not servers[0] and rate else ""
            print(f"{mode:11} {srv.name:16} {rate:7.1f} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} "
                  f"{r['errors']:6d} {per_1k(r):12.2f} {per_1k(r, 'db_cpu_s'):8.2f} {ratio:>6}")
    print("ratio: our commands/s over the reference's in the same run (median rounds).\n"
          "CPU s/1k cmd: ours = serve process tree + its PostgreSQL backends (of it DB); "
          "Dovecot = its\nprocess tree.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--prefill", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modes", default="persistent,login")
    p.add_argument("--scheme", default="PLAIN", help="Dovecot's passwd-file scheme")
    p.add_argument("--database-url",
                   default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
                   help="a PostgreSQL server (the bench database is created beside it), or "
                        "'sqlite' for the data dir's SQLite (--workers 1)")
    p.add_argument("--no-reference", dest="reference", action="store_false")
    p.add_argument("--json", type=Path, help="append every run as one JSON line")
    p.add_argument("--profile", type=Path, help="py-spy our runs into this directory")
    args = p.parse_args()
    modes = args.modes.split(",")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        servers = [start_mssante(stack, args)]
        if args.reference:
            servers.append(start_dovecot(stack, args))
        for srv in servers:  # prefill outside the timed runs
            srv.stress(args, "persistent", 0)
        results: dict[tuple[str, str], list[Result]] = {
            (s.name, m): [] for s in servers for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                for srv in servers:
                    prof = args.profile if args.profile and srv is servers[0] else None
                    r = srv.stress(args, mode, args.duration, prof)
                    results[(srv.name, mode)].append(r)
                    if args.json:
                        with args.json.open("a") as f:
                            f.write(json.dumps({"server": srv.name, **r}) + "\n")
        report(results, servers, modes)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
