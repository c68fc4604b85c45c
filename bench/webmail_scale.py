"""The webmail half of ``bench/imap_scale.py``: a patient's mailbox grown with the database, and
the p95 of ``GET /conversations`` (the inbox page) through a running ``mssante serve``.

The patient (``Marie Dupont``) receives ``SEED_MESSAGES`` real deliveries from a professional
(``Delivery.deliver``: sealed, conversations indexed, jobs queued); her mailbox is then grown
server-side like the IMAP one: new conversation rows (``PER_CONVERSATION`` messages each, the
newest activity last), and copies of her own sealed messages into them (same account and
storage keys, so they could be opened). Their titles and names are sealed and their counts
computed by :meth:`Conversations.set_index` (what start-up does for unindexed conversations).
The server is ``mssante serve --http 127.0.0.1:0`` on the same database; the client holds an
active session cookie (made as a login does, by :class:`webmail.sessions.Sessions`).
"""

# ruff: noqa: S608 - SQL built from integers and names of this script
from __future__ import annotations

import asyncio
import email.utils
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
from webmail_load import INS, pro_message

from mailserver.app import Services
from webmail.sessions import Sessions
from webmail.store import WebmailStore

ROOT = Path(__file__).resolve().parent.parent
SEED_CONVERSATIONS = 10
PER_CONVERSATION = 10
COLUMNS = ("modseq, flags, internaldate, size, content_enc, blob_key, content_key_enc, "
           "subject_enc, from_enc, meta_enc, message_id_hash, sent_date")


async def seed_patient(s: Services, pro_address: str, n: int) -> tuple[int, int]:
    """The patient and ``n`` delivered messages (at most ``SEED_CONVERSATIONS`` x
    ``PER_CONVERSATION``); returns (account id, INBOX folder id)."""
    patient, _code = await s.directory.add_patient(ins=INS, name="Marie Dupont")
    pro = await s.directory.lookup(pro_address)
    assert pro is not None
    party = await s.delivery.party_of(pro)
    body = "Bonjour,\n\nVoici les resultats de votre dernier bilan.\n" * 20
    t0 = time.perf_counter()
    for c in range(min(SEED_CONVERSATIONS, -(-n // PER_CONVERSATION))):
        first = pro_message(pro.address, patient.address, f"Suivi numero {c}", body)
        await s.delivery.deliver(party, pro.address, [patient.address], first)
        msgid = email.message_from_bytes(first)["Message-ID"]
        for k in range(1, min(PER_CONVERSATION, n - c * PER_CONVERSATION)):
            await s.delivery.deliver(party, pro.address, [patient.address], pro_message(
                pro.address, patient.address, f"RE: Suivi numero {c}", f"{k}\n{body}",
                refs=msgid))
    folder = await s.store.get_folder(patient.id, "INBOX")
    print(f"patient mailbox: {folder.message_count} messages delivered in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    return patient.id, folder.id


async def grow_patient(s: Services, dsn: str, patient_id: int, folder_id: int, size: int
                       ) -> None:
    """Grow the patient's INBOX to ``size`` messages in new conversations."""
    conn = await asyncpg.connect(dsn)
    try:
        have, base, started_by = await conn.fetchrow(
            "SELECT f.message_count, f.uidnext, (SELECT started_by FROM conversations "
            "WHERE patient_account_id = $2 LIMIT 1) FROM folders f WHERE f.id = $1",
            folder_id, patient_id)
        k = size - have
        if k <= 0:
            return
        t0 = time.perf_counter()
        n_conv = -(-k // PER_CONVERSATION)
        ids = [r[0] for r in await conn.fetch(
            "INSERT INTO conversations (patient_account_id, started_by, closed, created_at, "
            "updated_at) SELECT $1, $2, false, now() - make_interval(secs => $3 - g), "
            "now() - make_interval(secs => $3 - g) FROM generate_series(1, $3) AS g "
            "ORDER BY g RETURNING id", patient_id, started_by, n_conv)]
        ids.sort()
        await conn.execute("UPDATE accounts SET conversation_count = conversation_count + $2 "
                           "WHERE id = $1", patient_id, n_conv)
        n_src = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE folder_id = $1 AND uid < $2", folder_id,
            1 + PER_CONVERSATION * SEED_CONVERSATIONS)
        await conn.execute(
            "WITH src AS (SELECT row_number() OVER (ORDER BY uid) - 1 AS rn, * "
            "FROM messages WHERE folder_id = $2 AND uid <= $5) "
            f"INSERT INTO messages (account_id, folder_id, uid, conversation_id, {COLUMNS}) "
            "SELECT $1, $2, $3 + g.i, ($6::bigint[])[g.i / $7 + 1], "
            + ", ".join("src." + c for c in COLUMNS.split(", "))
            + " FROM generate_series(0, $4 - 1) AS g(i) JOIN src ON src.rn = g.i % $5",
            patient_id, folder_id, base, k, n_src, ids, PER_CONVERSATION)
        await conn.execute(
            "UPDATE folders SET uidnext = uidnext + $2, message_count = message_count + $2, "
            "highestmodseq = highestmodseq + 1 WHERE id = $1", folder_id, k)
        await conn.execute("ANALYZE messages")  # or each recount below may scan them all
    finally:
        await conn.close()
    for i in range(0, len(ids), 1000):  # sealed titles and names, counts from the messages
        await s.conversations.set_index(
            [(cid, patient_id, f"Suivi numero {cid}", "Dr Bench") for cid in ids[i:i + 1000]])
    print(f"patient mailbox grown by {k} messages ({n_conv} conversations) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)


async def session_token(s: Services, patient_id: int) -> str:
    """An active webmail session of the patient (what a completed login leaves)."""
    return (await Sessions(WebmailStore(s.db, s.keys), 10 ** 6).create(patient_id, "active")
            ).token


def start_serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """``mssante serve`` with only the webmail listener; (process, base URL)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(  # noqa: S603 - our own server
        [sys.executable, "-m", "mailserver", "--log-level", "WARNING", "serve", "--data-dir",
         str(data_dir), "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True, env=env,
        cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening: http "):
            host, _, port = line.split()[-1].rpartition(":")
            return proc, f"http://{host}:{port}"
    proc.wait()
    raise RuntimeError("mssante serve did not start")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_idle(pid: int, most: float = 120) -> None:
    """Let the server finish its jobs (notifications of the deliveries) before measuring."""
    end = time.monotonic() + most
    while time.monotonic() < end:
        cpu0 = _cpu_seconds(pid)
        await asyncio.sleep(1)
        if _cpu_seconds(pid) - cpu0 < 0.05:
            return


async def measure_inbox(base: str, token: str, rounds: int, pid: int
                        ) -> tuple[float, float, float, int]:
    """p50, p95 of ``GET /conversations`` and the server's mean CPU per request (ms), and
    the number of inbox pages."""
    await wait_idle(pid)
    times: list[float] = []
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base, cookie_jar=jar,
                                     cookies={"mss_session": token}) as http:
        async with http.get("/api/conversations") as r:
            pages = int((await r.json())["pages"])
        cpu0 = 0.0
        for i in range(rounds + 1):
            if i == 1:
                cpu0 = _cpu_seconds(pid)
            t0 = time.perf_counter()
            async with http.get("/conversations") as r:
                page = await r.read()
                if r.status != 200 or b"Suivi numero" not in page:
                    raise RuntimeError(f"inbox page: HTTP {r.status}")
            if i:  # the first request is a warm-up
                times.append(time.perf_counter() - t0)
        cpu = (_cpu_seconds(pid) - cpu0) / rounds

    def pct(xs: list[float], q: float) -> float:
        return 1000 * sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]

    return pct(times, 0.5), pct(times, 0.95), 1000 * cpu, pages
