"""IMAP latency as the database grows: the same mailbox measured at 1 k, 100 k, 1 M messages.

Usage::

    .venv/bin/python bench/imap_scale.py [--sizes 1000,100000,1000000] [--measured 1000]
        [--rounds 15] [--accounts 20] [--folders-per-account 5]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--explain]

A fresh PostgreSQL database (``mssante_imapscale_<pid>``, dropped at the end) and data dir are
made. The measured mailbox (one professional's INBOX) gets ``--measured`` messages through the
store's own path (``MailStore.prepare`` + ``append_in``, sealed like a delivery) and their IMAP
summaries are built as delivery builds them (:class:`~mailserver.imap.summaries.SummaryWarmer`
calls ``ImapStore.metas``). The database is then grown to each ``--sizes`` total by copying
those sealed rows, server-side (``INSERT ... SELECT`` over ``generate_series``), into the other
mailboxes of ``--accounts`` other professionals (``--folders-per-account`` each): realistic row
sizes and index shapes, without paying encryption for filler rows that are never opened (their
associated data names the measured account, so they could not be decrypted: they are not).
Folder counters (messages, next UID, modseq) are set to match, then ``ANALYZE``.

At each size the real IMAP server (implicit TLS, in this process) is asked ``--rounds`` times:
``SELECT INBOX``, ``UID FETCH 1:* (FLAGS UID)``, ``UID SEARCH HEADER Subject ...``,
``UID SEARCH BODY ...``; the table gives p50/p95 in ms and p95 over the first size's.
``--explain`` prints PostgreSQL's plans of the per-mailbox queries at the largest size.
"""

# ruff: noqa: S608 - SQL built from integers and table names of this script
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imap_bench import DOMAIN, PASSWORD, USER, Client, populate  # noqa: E402
from imap_suite import admin, pg_dsn  # noqa: E402

from mailserver.app import Services, open_services  # noqa: E402
from mailserver.cli.setup import init_data_dir  # noqa: E402
from mailserver.config import load  # noqa: E402
from mailserver.imap.meta import META_CODEC  # noqa: E402
from mailserver.imap.server import start_imap  # noqa: E402
from mailserver.store.imapmeta import ImapStore  # noqa: E402
from mailserver.tls import server_context  # noqa: E402

COLUMNS = ("modseq, flags, internaldate, size, content_enc, blob_key, content_key_enc, "
           "subject_enc, from_enc, meta_enc, message_id_hash, conversation_id, sent_date")
PICKED = ", ".join("src." + c for c in COLUMNS.split(", "))
EXPLAINED = [
    ("uids (SELECT)", "SELECT uid FROM messages WHERE folder_id = $1 ORDER BY uid"),
    ("rows of a UID range (FETCH, SEARCH)",
     "SELECT id, uid, flags, modseq FROM messages WHERE folder_id = $1 AND uid BETWEEN 1 "
     "AND 500 ORDER BY uid"),
    ("changes since a modseq (poll)",
     "SELECT uid, flags, modseq FROM messages WHERE folder_id = $1 AND modseq > 1000000"),
    ("first unseen (SELECT)",
     "SELECT min(uid) FROM messages WHERE folder_id = $1 AND flags NOT LIKE '%\\Seen%'"),
]


async def fill_measured(s: Services, account_id: int, n: int) -> int:
    """``n`` sealed messages in the account's INBOX (1,000 per transaction) and their
    summaries; returns the folder id."""
    t0 = time.perf_counter()
    await populate(s, account_id, n)
    folder = await s.store.get_folder(account_id, "INBOX")
    imap = ImapStore(s.store)
    uids = list(await imap.uids(folder.id))
    for i in range(0, len(uids), 500):  # as SummaryWarmer does after a delivery
        await imap.metas(account_id, await imap.rows(folder.id, uids[i:i + 500]), META_CODEC)
    print(f"measured mailbox: {n} messages stored and summarised in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    return folder.id


async def filler_folders(s: Services, accounts: int, per_account: int) -> list[tuple[int, int]]:
    """(account id, folder id) of the other professionals' mailboxes."""
    out = []
    for a in range(accounts):
        body = f"2{a:09d}"
        check = (10 - sum(int(d) * 2 - 9 * (int(d) * 2 > 9) if i % 2 == 0 else int(d)
                          for i, d in enumerate(reversed(body))) % 10) % 10
        acct = await s.directory.add_professional(
            rpps=body + str(check), email=f"filler{a}@{DOMAIN}", name=f"Dr Filler {a}",
            profession="10", password=PASSWORD)
        for f in range(per_account):
            name = "INBOX" if f == 0 else f"Dossiers/{f}"
            folder = (await s.store.get_folder(acct.id, name) if f == 0
                      else await s.store.create_folder(acct.id, name))
            out.append((acct.id, folder.id))
    return out


async def grow(dsn: str, source: int, targets: list[tuple[int, int]], add: int) -> None:
    """Copy the measured mailbox's rows into ``targets`` until ``add`` rows were added."""
    conn = await asyncpg.connect(dsn)
    try:
        n_src = await conn.fetchval("SELECT count(*) FROM messages WHERE folder_id = $1", source)
        per = -(-add // len(targets))
        t0 = time.perf_counter()
        for account_id, folder_id in targets:
            if add <= 0:
                break
            k = min(per, add)
            base = await conn.fetchval("SELECT uidnext FROM folders WHERE id = $1", folder_id)
            await conn.execute(
                f"WITH src AS (SELECT row_number() OVER (ORDER BY uid) - 1 AS rn, * "
                "FROM messages WHERE folder_id = $5) "
                f"INSERT INTO messages (account_id, folder_id, uid, {COLUMNS}) "
                f"SELECT $1, $2, $3 + g.i, {PICKED} FROM generate_series(0, $4 - 1) AS g(i) "
                "JOIN src ON src.rn = g.i % $6",
                account_id, folder_id, base, k, source, n_src)
            await conn.execute(
                "UPDATE folders SET uidnext = uidnext + $2, message_count = message_count + $2, "
                "highestmodseq = highestmodseq + 1 WHERE id = $1", folder_id, k)
            add -= k
        await conn.execute("ANALYZE messages")
        await conn.execute("ANALYZE folders")
        print(f"grown in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        await conn.close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


async def measure(c: Client, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Per operation: p50 and p95 latency, and median CPU time of this process (server and
    client; robust to other work on a shared machine), all in ms."""
    ops: list[tuple[str, Callable[[], Awaitable[int]]]] = [
        ("SELECT INBOX", lambda: c.cmd("SELECT INBOX")),
        ("UID FETCH 1:* (FLAGS UID)", lambda: c.cmd("UID FETCH 1:* (FLAGS UID)")),
        ("UID SEARCH HEADER Subject", lambda: c.cmd('UID SEARCH HEADER Subject "Resultat 77"')),
        ("UID SEARCH BODY", lambda: c.cmd('UID SEARCH BODY "Ligne 77"')),
    ]
    out = {}
    for name, fn in ops:
        await fn()  # warm-up
        times, cpu = [], []
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            await fn()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[name] = (pct(times, 0.5), pct(times, 0.95), pct(cpu, 0.5))
    return out


async def explain(dsn: str, folder_id: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for name, sql in EXPLAINED:
            plan = await conn.fetch("EXPLAIN " + sql, folder_id)
            print(f"-- {name}\n   " + "\n   ".join(r[0] for r in plan))
    finally:
        await conn.close()


async def run(args: argparse.Namespace, data: Path, url: str) -> None:
    config = load(data / "mssante.toml")
    config = dataclasses.replace(
        config, auth=dataclasses.replace(config.auth, fail_delay=0.0, max_fail_delay=0.0),
        store=dataclasses.replace(config.store, database_url=url))
    s = await open_services(config, fast_passwords=True)
    acct = await s.directory.add_professional(rpps="10003244273", email=USER, name="Dr Bench",
                                              profession="10", password=PASSWORD)
    folder_id = await fill_measured(s, acct.id, args.measured)
    targets = await filler_folders(s, args.accounts, args.folders_per_account)
    tls = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    server = await start_imap(s.imap_backend(), "127.0.0.1", 0, tls, implicit_tls=True)
    port = server.sockets[0].getsockname()[1]
    cctx = ssl.create_default_context(cafile=str(config.path(config.tls.ca_file)))
    results: dict[int, dict[str, tuple[float, float, float]]] = {}
    total = args.measured
    try:
        for size in args.sizes:
            if size > total:
                await grow(pg_dsn(url), folder_id, targets, size - total)
                total = size
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=cctx, server_hostname="localhost", limit=2**24)
            c = Client(reader, writer)
            await reader.readline()
            await c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
            results[size] = await measure(c, args.rounds)
            await c.cmd("LOGOUT")
            writer.close()
            print(f"measured at {size} messages", flush=True)
        if args.explain:
            await explain(pg_dsn(url), folder_id)
    finally:
        server.close()
        await s.close()
    report(args, results)


def report(args: argparse.Namespace, results: dict[int, dict[str, tuple[float, float, float]]]
           ) -> None:
    first = results[args.sizes[0]]
    print(f"\nmeasured mailbox: {args.measured} messages; {args.rounds} rounds; PostgreSQL")
    print(f"{'operation':27}" + "".join(f" {f'{n:,}: p50/p95/cpu ms':>25}" for n in args.sizes)
          + "  x p95  x cpu")
    for op in first:
        cells = "".join(" {:8.1f}/{:7.1f}/{:7.1f}".format(*results[n][op]) for n in args.sizes)
        ratios = " ".join(f"{results[n][op][1] / first[op][1]:.2f} "
                          f"{results[n][op][2] / first[op][2]:.2f}" for n in args.sizes[1:])
        print(f"{op:27}{cells}  {ratios}")
    print("x p95, x cpu: at each larger size, over the first size's (p95 latency; median CPU "
          "time of the process per operation).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--measured", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--folders-per-account", type=int, default=5)
    ap.add_argument("--database-url",
                    default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--explain", action="store_true")
    args = ap.parse_args()
    args.sizes = sorted(int(x) for x in args.sizes.split(","))
    if args.sizes[0] < args.measured:
        ap.error("the smallest size must hold the measured mailbox")
    dbname = f"mssante_imapscale_{id(args) % 100000}"
    asyncio.run(admin(args.database_url, f"CREATE DATABASE {dbname}"))
    url = args.database_url.rsplit("/", 1)[0] + "/" + dbname
    data = Path(tempfile.mkdtemp(prefix="imap-scale-"))
    try:
        init_data_dir(data, DOMAIN)
        asyncio.run(run(args, data, url))
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(admin(args.database_url, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))


if __name__ == "__main__":
    main()
