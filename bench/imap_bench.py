"""IMAP benchmark: SELECT, FETCH 1:* (FLAGS UID) and UID SEARCH on a large mailbox.

Usage::

    .venv/bin/python bench/imap_bench.py [--messages 100000] [--data-dir DIR] [--rounds 5]
        [--database-url postgresql+asyncpg://...] [--only THREAD]

Builds a data dir (or reuses ``--data-dir`` if it already holds the mailbox), fills INBOX with
``--messages`` small sealed messages through ``MailStore.prepare``/``append_in`` (1,000 per
transaction), starts the real IMAP server (implicit TLS) on 127.0.0.1:0 and drives it with a
minimal asyncio client in the same process.  Prints, per operation, the wall time, the CPU
time of the process (server and client: steadier than wall time on a shared machine),
operations per second and the peak of Python allocations during it (tracemalloc, measured in a
second pass so that tracing does not distort the timings), plus the process's peak RSS.
``--only TEXT`` keeps the operations whose name contains TEXT (after SELECT INBOX).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import ssl
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailserver.app import Services, open_services  # noqa: E402
from mailserver.cli.setup import init_data_dir  # noqa: E402
from mailserver.config import load  # noqa: E402
from mailserver.imap.server import start_imap  # noqa: E402
from mailserver.tls import server_context  # noqa: E402

DOMAIN = "bench.mssante.test"
USER = f"dr.bench@{DOMAIN}"
PASSWORD = "bench-password-2026"  # noqa: S105 - local benchmark account


def _msg(i: int) -> bytes:
    return (f"From: Dr Durand <dr.durand@{DOMAIN}>\r\nTo: {USER}\r\nSubject: Resultat {i}\r\n"
            f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <b{i}@{DOMAIN}>\r\n\r\n"
            f"Ligne {i}\r\n").encode()


async def populate(s: Services, account_id: int, n: int) -> None:
    """Append ``n`` messages, 1,000 per group-committed transaction; every 10th is \\Seen."""
    have = (await s.store.get_folder(account_id, "INBOX")).message_count
    t0 = time.perf_counter()
    for start in range(have, n, 1000):
        batch = [await s.store.prepare(account_id, _msg(i))
                 for i in range(start, min(n, start + 1000))]

        async def op(session, batch=batch, start=start):  # type: ignore[no-untyped-def]
            for k, p in enumerate(batch):
                flags = ["\\Seen"] if (start + k) % 10 == 0 else []
                await s.store.append_in(session, p, "INBOX", flags=flags)

        await s.db.write(op)
    if n > have:
        print(f"populated {n - have} messages in {time.perf_counter() - t0:.1f} s")


class Client:
    """Just enough IMAP to time commands: counts untagged lines, skips literals."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.n = reader, writer, 0

    async def cmd(self, text: str) -> int:
        self.n += 1
        tag = b"b%d " % self.n
        self.writer.write(tag + text.encode() + b"\r\n")
        count = 0
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line.startswith(tag):
                if not line[len(tag):].startswith(b"OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return count
            if line.endswith(b"}\r\n"):
                size = int(line[line.rindex(b"{") + 1:-3])
                await self.reader.readexactly(size)
            count += 1


async def main(args: argparse.Namespace, data: Path) -> None:
    """Populate, serve, measure."""
    config = load(data / "mssante.toml")
    config = dataclasses.replace(config, auth=dataclasses.replace(
        config.auth, fail_delay=0.0, max_fail_delay=0.0))
    if args.database_url:
        config = dataclasses.replace(config, store=dataclasses.replace(
            config.store, database_url=args.database_url))
    s = await open_services(config, fast_passwords=True, migrate=True)
    acct = await s.directory.lookup(USER)
    if acct is None:
        acct = await s.directory.add_professional(rpps="10003244273", email=USER,
                                                  name="Dr Bench", profession="10",
                                                  password=PASSWORD)
    await populate(s, acct.id, args.messages)
    tls = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    server = await start_imap(s.imap_backend(), "127.0.0.1", 0, tls, implicit_tls=True)
    port = server.sockets[0].getsockname()[1]
    cctx = ssl.create_default_context(cafile=str(config.path(config.tls.ca_file)))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=cctx,
                                                  server_hostname="localhost", limit=2**24)
    c = Client(reader, writer)
    await reader.readline()
    await c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')

    ops: list[tuple[str, int, Callable[[], Awaitable[int]]]] = [
        ("SELECT INBOX", 1, lambda: c.cmd("SELECT INBOX")),
        ("FETCH 1:* (FLAGS UID)", args.messages, lambda: c.cmd("FETCH 1:* (FLAGS UID)")),
        ("UID SEARCH UNSEEN", 1, lambda: c.cmd("UID SEARCH UNSEEN")),
        ("UID SEARCH 50000:* SEEN", 1, lambda: c.cmd("UID SEARCH UID 50000:* SEEN")),
        ("UID FETCH 1:* (FLAGS) (CHANGEDSINCE)", 1,
         lambda: c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1000000000)")),
        # The first SORT of a session reads every summary's keys (and makes the summaries
        # never made yet, decrypting those messages once); the best round is the warm one.
        ("UID SORT (DATE) UTF-8 ALL", 1, lambda: c.cmd("UID SORT (DATE) UTF-8 ALL")),
        ("UID SORT (SUBJECT) UTF-8 ALL", 1, lambda: c.cmd("UID SORT (SUBJECT) UTF-8 ALL")),
        ("UID THREAD REFERENCES UTF-8 ALL", 1,
         lambda: c.cmd("UID THREAD REFERENCES UTF-8 ALL")),
    ]
    print(f"mailbox: {args.messages} messages; {args.rounds} rounds each; "
          f"database {config.database_url.split(':')[0]}")
    if args.only:
        ops = [op for i, op in enumerate(ops) if i == 0 or args.only in op[0]]
    print(f"{'operation':40} {'best s':>8} {'cpu s':>8} {'ops/s':>12} {'peak alloc MB':>14}")
    for name, per_call, fn in ops:
        times, cpu = [], []
        for _ in range(args.rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            await fn()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        if name.startswith("UID SORT (DATE)"):
            print(f"{'  (first SORT of the session)':40} {times[0]:8.3f}")
        tracemalloc.start()
        await fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        best = min(times)
        print(f"{name:40} {best:8.3f} {min(cpu):8.3f} {per_call / best:12,.0f} "
              f"{peak / 2**20:14.1f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process (server + client + populate): {rss:.0f} MB")
    await c.cmd("LOGOUT")
    writer.close()
    server.close()
    await s.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--database-url", default="",
                    help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/imapbench")
    ap.add_argument("--only", default="", help="operations whose name contains this")
    ns = ap.parse_args()
    ddir = ns.data_dir or Path(tempfile.mkdtemp(prefix="imap-bench-"))
    if not (ddir / "mssante.toml").exists():
        init_data_dir(ddir, DOMAIN)  # runs its own event loop
    asyncio.run(main(ns, ddir))
