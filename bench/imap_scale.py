"""IMAP and webmail latency as the database grows: the same mailboxes at 1 k, 100 k, 1 M messages.

Usage::

    cd bench && ../.venv/bin/python imap_scale.py [--sizes 1000,100000,1000000]
        [--measured 100000] [--rounds 15] [--budget 60] [--web-rounds 100] [--accounts 20]
        [--folders-per-account 5] [--database-url postgresql+asyncpg://...] [--explain]
        [--webmail-only] [--keep]

A fresh PostgreSQL database (``mssante_imapscale_<pid>``, dropped at the end) and data dir
(``init --database-url``) are made. Two measured mailboxes grow with the database: one
professional's INBOX (IMAP) and one patient's INBOX (webmail), each holding
``min(--measured, size / 2)`` messages at each size (so 500 at 1 k; the output says how many).
The professional's first ``SEED`` messages go through the store's own path
(``MailStore.prepare`` + ``append_in``, sealed like a delivery) with their IMAP summaries built
as delivery builds them; the patient's first 100 are real deliveries in 10 conversations
(``webmail_scale.py``). Each mailbox then grows with server-side copies of its own sealed rows
(same account and storage keys: they open), the patient's in new conversations of 10 messages
indexed as start-up indexes them. The rest of the database is copies of the professional's
rows in the mailboxes of ``--accounts`` other professionals (``--folders-per-account`` each),
not decryptable there and never opened; then ``VACUUM ANALYZE``.

At each size the real IMAP server (implicit TLS, in this process) is asked ``SELECT INBOX``,
``UID FETCH 1:* (FLAGS UID)``, ``UID SEARCH HEADER Subject ...`` and ``UID SEARCH BODY ...``
(up to ``--rounds`` rounds each, fewer past ``--budget`` seconds), and ``mssante serve --http``
(a subprocess on the same database) is asked ``GET /conversations`` (the inbox's first page)
``--web-rounds`` times with an active session cookie. The table gives p50/p95 in ms and p95
over the first size's. ``--explain`` prints PostgreSQL's plans (EXPLAIN ANALYZE) of the
per-mailbox queries at the largest size.
"""

# ruff: noqa: S608 - SQL built from integers and table names of this script
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import webmail_scale  # noqa: E402
from imap_bench import DOMAIN, PASSWORD, USER, Client, populate  # noqa: E402
from smtp_suite import fresh_database, pg_dsn  # noqa: E402

from mailserver.app import Services, open_services  # noqa: E402
from mailserver.cli.setup import init_data_dir  # noqa: E402
from mailserver.config import load  # noqa: E402
from mailserver.imap.meta import META_CODEC  # noqa: E402
from mailserver.imap.server import start_imap  # noqa: E402
from mailserver.store.imapmeta import ImapStore  # noqa: E402
from mailserver.tls import server_context  # noqa: E402

COLUMNS = ("modseq, flags, internaldate, size, content_enc, blob_key, content_key_enc, "
           "subject_enc, from_enc, meta_enc, message_id_hash, conversation_id, sent_date")
SEED = 1000
"""Messages stored through the store's path; the rest are copies of them."""
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
EXPLAINED_PATIENT = [
    ("conversations of a patient (webmail page count, on the account row)",
     "SELECT conversation_count FROM accounts WHERE id = $1"),
    ("first inbox page (webmail)",
     "SELECT id, started_by, subject_enc, correspondent_enc, unread_count, message_count, "
     "updated_at, closed FROM conversations WHERE patient_account_id = $1 "
     "ORDER BY updated_at DESC, id DESC LIMIT 20"),
]


async def fill_measured(s: Services, account_id: int, n: int) -> int:
    """``n`` sealed messages (at most ``SEED``) in the account's INBOX, 1,000 per transaction,
    and their summaries; returns the folder id."""
    t0 = time.perf_counter()
    await populate(s, account_id, min(n, SEED))
    folder = await s.store.get_folder(account_id, "INBOX")
    imap = ImapStore(s.store)
    uids = list(await imap.uids(folder.id))
    for i in range(0, len(uids), 500):  # as SummaryWarmer does after a delivery
        await imap.metas(account_id, await imap.rows(folder.id, uids[i:i + 500]), META_CODEC)
    print(f"measured mailbox: {len(uids)} messages stored and summarised in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    return folder.id


async def copy_rows(conn: asyncpg.Connection, source: int, account_id: int, folder_id: int,
                    k: int) -> None:
    """Append ``k`` copies of the first ``SEED`` rows of folder ``source`` to the folder."""
    n_src = await conn.fetchval(
        "SELECT count(*) FROM messages WHERE folder_id = $1 AND uid <= $2", source, SEED)
    base = await conn.fetchval("SELECT uidnext FROM folders WHERE id = $1", folder_id)
    await conn.execute(
        "WITH src AS (SELECT row_number() OVER (ORDER BY uid) - 1 AS rn, * "
        "FROM messages WHERE folder_id = $5 AND uid <= $7) "
        f"INSERT INTO messages (account_id, folder_id, uid, {COLUMNS}) "
        f"SELECT $1, $2, $3 + g.i, {PICKED} FROM generate_series(0, $4 - 1) AS g(i) "
        "JOIN src ON src.rn = g.i % $6",
        account_id, folder_id, base, k, source, n_src, SEED)
    await conn.execute(
        "UPDATE folders SET uidnext = uidnext + $2, message_count = message_count + $2, "
        "highestmodseq = highestmodseq + 1 WHERE id = $1", folder_id, k)


async def grow_measured(dsn: str, account_id: int, folder_id: int, size: int) -> None:
    """Grow the measured mailbox to ``size`` messages with copies of its own (same account
    and storage keys: they open, and their summaries unseal)."""
    conn = await asyncpg.connect(dsn)
    try:
        have = await conn.fetchval("SELECT message_count FROM folders WHERE id = $1", folder_id)
        if size > have:
            t0 = time.perf_counter()
            await copy_rows(conn, folder_id, account_id, folder_id, size - have)
            print(f"measured mailbox grown to {size} in {time.perf_counter() - t0:.1f} s",
                  flush=True)
    finally:
        await conn.close()


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


async def grow(dsn: str, source: int, targets: list[tuple[int, int]], size: int) -> None:
    """Copy the measured mailbox's rows into ``targets`` until the database holds ``size``
    messages."""
    conn = await asyncpg.connect(dsn)
    try:
        add = size - await conn.fetchval("SELECT count(*) FROM messages")
        per = -(-add // len(targets))
        t0 = time.perf_counter()
        for account_id, folder_id in targets:
            if add <= 0:
                break
            k = min(per, add)
            await copy_rows(conn, source, account_id, folder_id, k)
            add -= k
        for table in ("messages", "folders", "conversations", "accounts"):
            # as autovacuum would after such growth: statistics and the visibility map
            await conn.execute(f"VACUUM ANALYZE {table}")
        print(f"grown to {size} messages in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        await conn.close()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


async def measure(c: Client, rounds: int, budget: float
                  ) -> dict[str, tuple[float, float, float]]:
    """Per operation: p50 and p95 latency, and median CPU time of this process (server and
    client; robust to other work on a shared machine), all in ms. An operation gets
    ``rounds`` rounds after a warm-up, or fewer (at least 3) once they took ``budget`` seconds;
    a warm-up longer than ``budget / 4`` counts as a round (an O(n) operation on a large
    mailbox: its cold first run is the conservative figure)."""
    ops: list[tuple[str, Callable[[], Awaitable[int]]]] = [
        ("SELECT INBOX", lambda: c.cmd("SELECT INBOX")),
        ("UID FETCH 1:* (FLAGS UID)", lambda: c.cmd("UID FETCH 1:* (FLAGS UID)")),
        ("UID SEARCH HEADER Subject", lambda: c.cmd('UID SEARCH HEADER Subject "Resultat 77"')),
        ("UID SEARCH BODY", lambda: c.cmd('UID SEARCH BODY "Ligne 77"')),
    ]
    out = {}
    for name, fn in ops:
        times: list[float] = []
        cpu: list[float] = []
        for i in range(rounds + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            await fn()
            dt = time.perf_counter() - t0
            if i or dt > budget / 4:
                times.append(dt)
                cpu.append(time.process_time() - c0)
            if len(times) >= 3 and sum(times) > budget:
                break
        out[name] = (pct(times, 0.5), pct(times, 0.95), pct(cpu, 0.5))
    return out


async def explain(dsn: str, folder_id: int, patient_id: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for queries, arg in ((EXPLAINED, folder_id), (EXPLAINED_PATIENT, patient_id)):
            for name, sql in queries:
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, arg)
                print(f"-- {name}\n   " + "\n   ".join(r[0] for r in plan))
    finally:
        await conn.close()


async def run(args: argparse.Namespace, data: Path) -> None:
    config = load(data / "mssante.toml")
    config = dataclasses.replace(
        config, auth=dataclasses.replace(config.auth, fail_delay=0.0, max_fail_delay=0.0))
    dsn = pg_dsn(config.database_url)
    s = await open_services(config, fast_passwords=True)
    acct = await s.directory.add_professional(rpps="10003244273", email=USER, name="Dr Bench",
                                              profession="10", password=PASSWORD)
    sizes = {n: min(args.measured, n // 2) for n in args.sizes}
    folder_id = await fill_measured(s, acct.id, sizes[args.sizes[0]])
    patient_id, pfolder = await webmail_scale.seed_patient(s, USER, sizes[args.sizes[0]])
    token = await webmail_scale.session_token(s, patient_id)
    targets = await filler_folders(s, args.accounts, args.folders_per_account)
    tls = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    server = await start_imap(s.imap_backend(), "127.0.0.1", 0, tls, implicit_tls=True)
    port = server.sockets[0].getsockname()[1]
    cctx = ssl.create_default_context(cafile=str(config.path(config.tls.ca_file)))
    results: dict[int, dict[str, tuple[float, float, float]]] = {}
    serve, base = webmail_scale.start_serve(data)
    print(f"mssante serve (pid {serve.pid}) webmail at {base}", flush=True)
    try:
        for size in args.sizes:
            await grow_measured(dsn, acct.id, folder_id, sizes[size])
            await webmail_scale.grow_patient(s, dsn, patient_id, pfolder, sizes[size])
            await grow(dsn, folder_id, targets, size)
            results[size] = {}
            if not args.webmail_only:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=cctx, server_hostname="localhost", limit=2**24)
                c = Client(reader, writer)
                await reader.readline()
                await c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
                results[size] = await measure(c, args.rounds, args.budget)
                await c.cmd("LOGOUT")
                writer.close()
            p50, p95, cpu, pages = await webmail_scale.measure_inbox(
                base, token, args.web_rounds, serve.pid)
            results[size]["webmail inbox page (serve)"] = (p50, p95, cpu)
            print(f"measured at {size} messages ({sizes[size]} in each measured mailbox, "
                  f"{pages} inbox pages)", flush=True)
        if args.explain:
            await explain(dsn, folder_id, patient_id)
    finally:
        serve.terminate()
        serve.wait(timeout=15)
        server.close()
        await s.close()
    report(args, sizes, results)


def report(args: argparse.Namespace, sizes: dict[int, int],
           results: dict[int, dict[str, tuple[float, float, float]]]) -> None:
    first = results[args.sizes[0]]
    print(f"\nmessages in the database: {', '.join(f'{n:,}' for n in args.sizes)}; in each "
          f"measured mailbox (the professional's INBOX over IMAP, the patient's over the "
          f"webmail): {', '.join(f'{sizes[n]:,}' for n in args.sizes)} (--measured "
          f"{args.measured:,}, at most half the database); up to {args.rounds} rounds "
          f"(IMAP, {args.budget:.0f} s budget) and {args.web_rounds} (webmail); PostgreSQL")
    print(f"{'operation':27}" + "".join(f" {f'{n:,}: p50/p95/cpu ms':>25}" for n in args.sizes)
          + "  x p95  x cpu")
    for op in first:
        cells = "".join(" {:8.1f}/{:7.1f}/{:7.1f}".format(*results[n][op]) for n in args.sizes)
        ratios = " ".join(f"{results[n][op][1] / first[op][1]:.2f} "
                          f"{results[n][op][2] / max(first[op][2], 1e-3):.2f}"
                          for n in args.sizes[1:])
        print(f"{op:27}{cells}  {ratios}")
    print("x p95, x cpu: at each larger size, over the first size's. cpu: IMAP, median CPU "
          "time of this process per operation (server and client); webmail, the server "
          "process's CPU per request (mean, from /proc in 10 ms ticks).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--measured", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds per IMAP operation and size, beyond which rounds stop (>= 3)")
    ap.add_argument("--web-rounds", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--folders-per-account", type=int, default=5)
    ap.add_argument("--database-url",
                    default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--webmail-only", action="store_true", help="skip the IMAP operations")
    ap.add_argument("--keep", action="store_true", help="keep the database and data dir")
    args = ap.parse_args()
    args.sizes = sorted(int(x) for x in args.sizes.split(","))
    data = Path(tempfile.mkdtemp(prefix="imap-scale-"))
    try:
        with fresh_database(args.database_url, "mssante_imapscale", keep=args.keep) as url:
            init_data_dir(data, DOMAIN, database_url=url)
            asyncio.run(run(args, data))
    finally:
        if args.keep:
            print(f"kept: data dir {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)

if __name__ == "__main__":
    main()
