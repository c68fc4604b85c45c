"""Webmail load: inbox and conversation page latency of one patient with a large mailbox.

Builds a data directory (SQLite) holding one patient whose mailbox has ``--messages`` messages
(conversations of ``--per-conversation`` messages, plus one long conversation of ``--long``
messages), starts the real server (``mssante serve --http``) as a subprocess, and requests the
pages over real HTTP with an active session cookie:

    PYTHONPATH=. .venv/bin/python bench/webmail_load.py --messages 10000 --requests 200

For each of 1 and ``--concurrency`` clients it prints the median and p95 latency of
``GET /conversations`` (first page of the inbox), ``GET /conversations?page=N`` (a middle page),
``GET /api/conversations`` and ``GET /conversations/<long>`` (the long conversation), and the
server's CPU time per request (from /proc). ``--data-dir`` reuses a populated directory.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import os
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOMAIN = "bench.mssante.test"
INS = "279035121518989"
RPPS = ("10003244273", "10000000017", "10000000025", "10000000033", "10000000041")


def pro_message(pro: str, patient: str, subject: str, body: str, refs: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Dr Bench <{pro}>"
    msg["To"] = patient
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    msg["Date"] = email.utils.formatdate()
    if refs:
        msg["In-Reply-To"] = refs
        msg["References"] = refs
    msg.set_content(body)
    return bytes(msg)


async def populate(data_dir: Path, messages: int, per_conv: int, long: int) -> None:
    """Create the accounts, ``messages`` messages and an active session (token file)."""
    from mailserver.app import open_services
    from mailserver.config import load

    config = load(data_dir / "mssante.toml")
    s = await open_services(config, fast_passwords=True)
    try:
        patient, _code = await s.directory.add_patient(ins=INS, name="Marie Dupont")
        pros = [await s.directory.add_professional(
            rpps=r, email=f"pro{i}@{DOMAIN}", name=f"Dr Praticien {i}", profession="10",
            password="bench-password-1")  # noqa: S106 - bench account
            for i, r in enumerate(RPPS)]
        parties = [await s.delivery.party_of(p) for p in pros]
        body = "Bonjour,\n\nVoici les résultats de votre dernier bilan.\n" * 20

        async def thread(n: int, size: int) -> None:
            i = n % len(pros)
            pro, party = pros[i], parties[i]
            first = pro_message(pro.address, patient.address, f"Suivi numéro {n}", body)
            await s.delivery.deliver(party, pro.address, [patient.address], first)
            msgid = email.message_from_bytes(first)["Message-ID"]
            for k in range(1, size):
                await s.delivery.deliver(party, pro.address, [patient.address], pro_message(
                    pro.address, patient.address, f"RE: Suivi numéro {n}", f"{k}\n{body}",
                    refs=msgid))

        started = time.monotonic()
        await thread(0, long)  # the long conversation is the oldest one
        sizes = []
        left = messages - long
        while left > 0:
            sizes.append(min(per_conv, left))
            left -= sizes[-1]
        for start in range(0, len(sizes), 50):  # 50 threads at a time (group commit)
            await asyncio.gather(*(thread(start + j + 1, size)
                                   for j, size in enumerate(sizes[start:start + 50])))
        print(f"populated {messages} messages in {len(sizes) + 1} conversations "
              f"in {time.monotonic() - started:.0f} s", flush=True)
        (data_dir / "bench-populated").write_text(str(patient.id))
    finally:
        await s.close()


async def new_session(data_dir: Path) -> str:
    """A fresh active session for the bench patient (sessions expire between runs)."""
    from mailserver.app import open_services
    from mailserver.config import load
    from webmail.sessions import Sessions
    from webmail.store import WebmailStore

    s = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    try:
        patient_id = int((data_dir / "bench-populated").read_text())
        sessions = Sessions(WebmailStore(s.db, s.keys), 10 ** 6)
        return (await sessions.create(patient_id, "active")).token
    finally:
        await s.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(base: str, token: str, paths: list[str], requests: int, concurrency: int,
                  server_pid: int) -> tuple[list[float], float]:
    import aiohttp

    latencies: list[float] = []
    left = requests
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base, cookie_jar=jar,
                                     cookies={"mss_session": token}) as http:
        async def worker(w: int) -> None:
            nonlocal left
            n = w
            while left > 0:
                left -= 1
                path = paths[n % len(paths)]
                n += 1
                t0 = time.perf_counter()
                async with http.get(path) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{path}: HTTP {r.status}")
                latencies.append(time.perf_counter() - t0)

        cpu0 = _cpu_seconds(server_pid)
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        cpu = _cpu_seconds(server_pid) - cpu0
    return latencies, cpu / max(1, len(latencies))


def _fmt(name: str, clients: int, lat: list[float], cpu: float) -> str:
    lat = sorted(lat)
    p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
    median = statistics.median(lat)
    return (f"{name:<22} clients={clients:<3} n={len(lat):<5} median={median * 1000:8.1f} ms"
            f"  p95={p95 * 1000:8.1f} ms  server cpu/req={cpu * 1000:6.1f} ms")


async def wait_idle(server_pid: int) -> None:
    """Let the server's workers finish the jobs of the populated messages (filing,
    notifications) so they do not take CPU from the measured requests."""
    while True:
        cpu0 = _cpu_seconds(server_pid)
        await asyncio.sleep(2)
        if _cpu_seconds(server_pid) - cpu0 < 0.1:
            return


async def run_bench(base: str, token: str, args: argparse.Namespace, server_pid: int) -> None:
    import aiohttp

    await wait_idle(server_pid)

    async with aiohttp.ClientSession(base, cookies={"mss_session": token}) as http:
        async with http.get("/api/conversations") as r:
            data = await r.json()
        pages = data["pages"]
        async with http.get(f"/api/conversations?page={pages}") as r:
            last = (await r.json())["conversations"]
    long_id = min(c["id"] for c in last)  # the oldest conversation is the long one
    cases = {
        "inbox page 1": ["/conversations"],
        "inbox middle page": [f"/conversations?page={max(1, pages // 2)}"],
        "api conversations": ["/api/conversations"],
        "long conversation": [f"/conversations/{long_id}"],
    }
    print(f"{pages} inbox pages; long conversation id {long_id}", flush=True)
    wanted = [c.strip() for c in args.cases.split(",")] if args.cases else list(cases)
    for clients in sorted({1, args.concurrency}):
        for name in wanted:
            paths = cases[name]
            n = args.requests if clients > 1 else max(args.requests // 2, 1)
            if args.warmup:
                await measure(base, token, paths, clients, clients, server_pid)
            lat, cpu = await measure(base, token, paths, n, clients, server_pid)
            print(_fmt(name, clients, lat, cpu), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--per-conversation", type=int, default=10)
    p.add_argument("--long", type=int, default=50)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--data-dir", type=Path, help="reuse (or create) this data directory")
    p.add_argument("--cases", default="", help="comma-separated subset of the cases")
    p.add_argument("--no-warmup", dest="warmup", action="store_false")
    args = p.parse_args()

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="webmail-bench-")
        data_dir = Path(tmp.name) / "data"
    if not (data_dir / "bench-populated").exists():
        from mailserver.cli.setup import init_data_dir

        if not (data_dir / "mssante.toml").exists():
            init_data_dir(data_dir, DOMAIN)
        asyncio.run(populate(data_dir, args.messages, args.per_conversation, args.long))
    token = asyncio.run(new_session(data_dir))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    server = subprocess.Popen(  # noqa: S603 - our own server
        [sys.executable, "-m", "mailserver", "serve", "--data-dir", str(data_dir),
         "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=env, cwd=ROOT)
    try:
        assert server.stdout is not None
        base = ""
        for line in server.stdout:
            if line.startswith("listening: http "):
                host, _, port = line.split()[-1].rpartition(":")
                base = f"http://{host}:{port}"
                print(f"server listening after {time.monotonic() - started:.1f} s", flush=True)
                break
        if not base:
            print("server did not start", file=sys.stderr)
            return 1
        asyncio.run(run_bench(base, token, args, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=10)
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
