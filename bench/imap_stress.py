"""IMAP stress benchmark modelled on Dovecot's imaptest default profile (commands/s per type).

Usage::

    .venv/bin/python bench/imap_stress.py --host 127.0.0.1 --port PORT --tls implicit \\
        --cafile DIR/tls/ca.pem --user dr@bench.mssante.test --password-file F \\
        [--clients 5] [--duration 10] [--login-each-cycle] [--prefill 1000] [--seed 1]

The command mix follows imaptest's documented default state table (probabilities in %, run in this
order each cycle; the second number is the chance to repeat the command once more, again and again):

    LOGIN 100, LIST 50, STATUS 50, SELECT 100, FETCH 100, FETCH2 100,30, COPY 33,5,
    STORE 50, DELETE 100, EXPUNGE 100, APPEND 100,5, LOGOUT 100
    (SEARCH, NOOP, CHECK are 0 in imaptest's defaults; enable them with --prob search=20 etc.)

* FETCH: ``FETCH n:m (random items)`` over a range of up to 100 messages with a random start; items
  among UID FLAGS ENVELOPE INTERNALDATE BODY BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (...)].
* FETCH2: ``FETCH n (BODY.PEEK[])`` of one random message.
* COPY: copies 1-3 random messages into the selected mailbox (the mailbox grows; DELETE trims it).
* STORE: ``STORE range [+-]FLAGS.SILENT (...)`` with \\Seen \\Flagged \\Answered and $Label1..5.
* DELETE: ``STORE range +FLAGS.SILENT (\\Deleted)`` on enough messages to bring the mailbox back
  towards ``--prefill`` (at least one); EXPUNGE then removes them.
* APPEND: one realistic message (text or multipart with a small base64 attachment, 2-6 KiB).

``--login-each-cycle`` (imaptest's default): every cycle connects, does TLS (implicit or STARTTLS),
LOGIN, the commands above, LOGOUT. Persistent mode (imaptest ``logout=0``): each client logs in and
SELECTs once, then loops over the commands valid in the selected state (LIST, STATUS, FETCH, FETCH2,
COPY, STORE, DELETE, EXPUNGE, APPEND, and the optional SEARCH/NOOP/CHECK).

Like imaptest (``no_pipelining`` off by default), the literal-free commands of a cycle are
pipelined: sent at once, then read back; a command's latency is then measured from the send of the
batch. APPEND uses a synchronising literal and waits for it. ``--no-pipelining`` sends one command
at a time. imaptest keeps the mailbox near ``msgs=30`` by default; this benchmark defaults to
``--prefill 1000`` (the team's reference size), ``--prefill 30`` reproduces imaptest's.

The client is a minimal asyncio IMAP reader (lines + literals, EXISTS/EXPUNGE tracking); its own CPU
time is printed so that one can check it is not the bottleneck. STARTTLS is counted apart: the total
("imaptest states") excludes it, like imaptest which does not use STARTTLS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import ssl
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ORDER = ["LOGIN", "LIST", "STATUS", "SELECT", "FETCH", "FETCH2", "SEARCH", "COPY", "STORE",
         "DELETE", "EXPUNGE", "APPEND", "NOOP", "CHECK", "LOGOUT"]
DEFAULT_PROB: dict[str, tuple[int, int]] = {
    "LOGIN": (100, 0), "LIST": (50, 0), "STATUS": (50, 0), "SELECT": (100, 0),
    "FETCH": (100, 0), "FETCH2": (100, 30), "SEARCH": (0, 0), "COPY": (33, 5),
    "STORE": (50, 0), "DELETE": (100, 0), "EXPUNGE": (100, 0), "APPEND": (100, 5),
    "NOOP": (0, 0), "CHECK": (0, 0), "LOGOUT": (100, 0),
}
SESSION_ONLY = {"LOGIN", "SELECT", "LOGOUT"}
FETCH_ITEMS = ["UID", "FLAGS", "ENVELOPE", "INTERNALDATE", "BODY", "BODYSTRUCTURE"]
HEADERS = ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References",
           "Delivered-To"]
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Label1", "$Label2", "$Label3", "$Label4",
         "$Label5"]
SEARCHES = ["SEEN", "UNSEEN", "FLAGGED", "SUBJECT \"Resultat\"", "FROM \"durand\"",
            "SINCE 1-Mar-2026", "LARGER 3000", "OR SEEN FLAGGED", "NOT DELETED SMALLER 4000"]
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_COUNT = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE)\r\n$")


class ImapError(Exception):
    """A tagged NO/BAD, or the connection closed mid-command."""


class CommandNo(ImapError):
    """A tagged NO: counted as an error, the session goes on (only BAD/IO errors reconnect)."""


def make_message(i: int, rnd: random.Random) -> bytes:
    """A realistic small message: text, or multipart with a base64 attachment (2-6 KiB)."""
    body = ("Bonjour,\r\n\r\nVeuillez trouver le compte rendu de consultation.\r\n" * 
            rnd.randint(4, 20))
    head = (f"From: Dr Durand <dr.durand@bench.mssante.test>\r\n"
            f"To: Dr Bench <dr@bench.mssante.test>\r\nSubject: Resultat {i}\r\n"
            f"Date: Mon, 2 Mar 2026 10:{i % 60:02d}:00 +0100\r\n"
            f"Message-ID: <s{i}.{rnd.getrandbits(32)}@bench.mssante.test>\r\nMIME-Version: 1.0\r\n")
    if i % 3:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    att = base64.encodebytes(rnd.randbytes(rnd.randint(600, 2400))).decode().replace("\n", "\r\n")
    return (head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body +
            '--b1\r\nContent-Type: application/pdf; name="cr.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + att + "--b1--\r\n").encode()


class Conn:
    """One IMAP connection: tagged commands, literal-aware response reading, EXISTS tracking."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w, self.n, self.exists = reader, writer, 0, 0
        self.done: dict[bytes, bytes] = {}  # tagged completions read ahead of their turn

    @classmethod
    async def open(cls, args: argparse.Namespace, ctx: ssl.SSLContext,
                   stats: Stats | None) -> Conn:
        implicit = args.tls == "implicit"
        r, w = await asyncio.open_connection(args.host, args.port, limit=2**22,
                                             ssl=ctx if implicit else None,
                                             server_hostname=args.sni if implicit else None)
        c = cls(r, w)
        greeting = await r.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(greeting.decode(errors="replace"))
        if not implicit:
            t0 = time.perf_counter()
            await c.cmd("STARTTLS")
            await w.start_tls(ctx, server_hostname=args.sni)
            if stats is not None:
                stats.add("STARTTLS", time.perf_counter() - t0)
        return c

    def send(self, text: str) -> bytes:
        """Write one literal-free command without waiting (pipelining); returns its tag."""
        self.n += 1
        tag = b"x%d " % self.n
        self.w.write(tag + text.encode() + b"\r\n")
        return tag

    async def cmd(self, text: str, literal: bytes | None = None) -> None:
        """Send one command (with an optional synchronising literal) and read to its tagged OK."""
        if literal is None:
            await self.wait(self.send(text))
            return
        self.n += 1
        tag = b"x%d " % self.n
        self.w.write(tag + text.encode() + b" {%d}\r\n" % len(literal))
        line = await self.r.readline()
        while not line.startswith(b"+"):  # RFC 3501 7.5: wait for the continuation
            if not line or line.startswith(tag):
                raise ImapError(line.decode(errors="replace"))
            line = await self.r.readline()
        self.w.write(literal + b"\r\n")
        await self.wait(tag)

    async def wait(self, tag: bytes) -> None:
        """Read responses up to ``tag``'s completion; raise on NO/BAD."""
        done = self.done.pop(tag, None)
        if done is not None:
            return self._check(tag, done)
        r = self.r
        while True:
            line = await r.readline()
            if not line:
                raise ImapError("connection closed")
            while line.endswith(b"}\r\n") and (m := _LITERAL.search(line)):
                await r.readexactly(int(m.group(1)))
                line = await r.readline()
            if line.startswith(tag):
                return self._check(tag, line)
            if line[:1] == b"x":  # RFC 3501 5.5: pipelined commands may complete out of order
                self.done[line[:line.index(b" ") + 1]] = line
                continue
            if line[:2] == b"* " and (m := _COUNT.match(line)):
                if m.group(2) == b"EXISTS":
                    self.exists = int(m.group(1))
                else:
                    self.exists -= 1

    @staticmethod
    def _check(tag: bytes, line: bytes) -> None:
        status = line[len(tag):len(tag) + 2]
        if status == b"NO":
            raise CommandNo(line[len(tag):].decode(errors="replace").strip())
        if status != b"OK":
            raise ImapError(line.decode(errors="replace").strip())

    def close(self) -> None:
        self.w.close()


@dataclass
class Stats:
    """Latencies per command name; errors as text -> count."""

    lat: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cycles: int = 0

    def add(self, name: str, dt: float) -> None:
        self.lat.setdefault(name, []).append(dt)

    def no(self, name: str, exc: Exception) -> None:
        """Count a tagged NO (not in the throughput), keyed by command and response code."""
        key = f"{name}: {str(exc)[:60]}"
        self.errors[key] = self.errors.get(key, 0) + 1


class Worker:
    """One simulated client running imaptest-like cycles until the deadline."""

    def __init__(self, args: argparse.Namespace, ctx: ssl.SSLContext, stats: Stats,
                 prob: dict[str, tuple[int, int]], seed: int) -> None:
        self.a, self.ctx, self.s, self.prob = args, ctx, stats, prob
        self.rnd = random.Random(seed)  # noqa: S311 - reproducible load, not crypto
        self.seq = seed * 1_000_000

    def want(self, name: str) -> bool:
        return self.rnd.randrange(100) < self.prob[name][0]

    def again(self, name: str) -> bool:
        return self.rnd.randrange(100) < self.prob[name][1]

    async def timed(self, c: Conn, name: str, text: str, literal: bytes | None = None) -> None:
        t0 = time.perf_counter()
        await c.cmd(text, literal)
        self.s.add(name, time.perf_counter() - t0)

    def rng(self, c: Conn, size: int) -> str:
        n = max(c.exists, 1)
        size = min(size, n)
        start = self.rnd.randint(1, n - size + 1)
        return f"{start}:{start + size - 1}" if size > 1 else str(start)

    def plan(self, c: Conn) -> list[tuple[str, str]]:
        """The literal-free selected-state commands of one imaptest cycle, in state order.

        Sequence numbers are drawn against the message count known before the cycle; only
        the final EXPUNGE changes numbering, so the plan is valid when pipelined as a whole.
        """
        a, rnd, n = self.a, self.rnd, c.exists
        out: list[tuple[str, str]] = []
        if self.want("LIST"):
            out.append(("LIST", 'LIST "" *'))
        if self.want("STATUS"):
            out.append(("STATUS", "STATUS INBOX (MESSAGES UNSEEN RECENT)"))
        if n and self.want("FETCH"):
            items = rnd.sample(FETCH_ITEMS, rnd.randint(1, 4))
            if rnd.random() < 0.5:
                hdrs = " ".join(rnd.sample(HEADERS, rnd.randint(1, 4)))
                items.append(f"BODY.PEEK[HEADER.FIELDS ({hdrs})]")
            out.append(("FETCH", f"FETCH {self.rng(c, 100)} ({' '.join(items)})"))
        if n and self.want("FETCH2"):
            out.append(("FETCH2", f"FETCH {rnd.randint(1, n)} (BODY.PEEK[])"))
            while self.again("FETCH2"):
                out.append(("FETCH2", f"FETCH {rnd.randint(1, n)} (BODY.PEEK[])"))
        if n and self.want("SEARCH"):
            out.append(("SEARCH", f"SEARCH {rnd.choice(SEARCHES)}"))
        if n and self.want("COPY"):
            out.append(("COPY", f"COPY {self.rng(c, rnd.randint(1, 3))} INBOX"))
            while self.again("COPY"):
                out.append(("COPY", f"COPY {self.rng(c, rnd.randint(1, 3))} INBOX"))
        if n and self.want("STORE"):
            op = rnd.choice(["+", "-", ""])
            flags = " ".join(rnd.sample(FLAGS, rnd.randint(1, 3)))
            out.append(("STORE",
                        f"STORE {self.rng(c, rnd.randint(1, 10))} {op}FLAGS.SILENT ({flags})"))
        if n and self.want("DELETE"):
            excess = max(1, n - a.prefill + rnd.randint(0, 1))
            out.append(("DELETE", f"STORE {self.rng(c, excess)} +FLAGS.SILENT (\\Deleted)"))
        if self.want("EXPUNGE"):
            out.append(("EXPUNGE", "EXPUNGE"))
        if self.want("NOOP"):
            out.append(("NOOP", "NOOP"))
        if self.want("CHECK"):
            out.append(("CHECK", "CHECK"))
        return out

    async def selected_commands(self, c: Conn) -> None:
        """The selected-state part of one imaptest cycle (pipelined unless --no-pipelining)."""
        plan = self.plan(c)
        if self.a.no_pipelining:
            for name, text in plan:
                try:
                    await self.timed(c, name, text)
                except CommandNo as e:
                    self.s.no(name, e)
        else:
            t0 = time.perf_counter()
            tags = [(name, c.send(text)) for name, text in plan]
            for name, tag in tags:
                try:
                    await c.wait(tag)
                except CommandNo as e:
                    self.s.no(name, e)
                    continue
                self.s.add(name, time.perf_counter() - t0)
        if self.want("APPEND"):  # synchronising literal: never pipelined
            while True:
                self.seq += 1
                await self.timed(c, "APPEND", "APPEND INBOX", make_message(self.seq, self.rnd))
                if not self.again("APPEND"):
                    break

    async def login(self) -> Conn:
        c = await Conn.open(self.a, self.ctx, self.s)
        await self.timed(c, "LOGIN", f'LOGIN "{self.a.user}" "{self.a.password}"')
        await self.timed(c, "SELECT", "SELECT INBOX")
        return c

    async def run(self, deadline: float) -> None:
        c: Conn | None = None
        while time.perf_counter() < deadline:
            try:
                if c is None:
                    c = await self.login()
                await self.selected_commands(c)
                if self.a.login_each_cycle:
                    await self.timed(c, "LOGOUT", "LOGOUT")
                    c.close()
                    c = None
                self.s.cycles += 1
            except (ImapError, OSError, asyncio.IncompleteReadError, ssl.SSLError) as e:
                key = str(e)[:80]
                self.s.errors[key] = self.s.errors.get(key, 0) + 1
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            try:
                await c.cmd("LOGOUT")
            except (ImapError, OSError, asyncio.IncompleteReadError):
                pass
            c.close()


async def prefill(args: argparse.Namespace, ctx: ssl.SSLContext) -> None:
    """Top INBOX up to ``--prefill`` messages with APPEND (one connection, a few in flight)."""
    c = await Conn.open(args, ctx, None)
    await c.cmd(f'LOGIN "{args.user}" "{args.password}"')
    await c.cmd("SELECT INBOX")
    missing = args.prefill - c.exists
    rnd = random.Random(0)  # noqa: S311 - reproducible load, not crypto
    t0 = time.perf_counter()
    for i in range(max(missing, 0)):
        await c.cmd("APPEND INBOX", make_message(i, rnd))
    # Read the new messages' structure once, as a client's first sync does: the servers build
    # their caches (Dovecot's index, our sealed summaries) before the timed run, not during it.
    if missing > 0:
        await c.cmd(f"FETCH {args.prefill - missing + 1}:* (ENVELOPE BODYSTRUCTURE)")
    await c.cmd("LOGOUT")
    c.close()
    if missing > 0:
        print(f"prefilled {missing} messages in {time.perf_counter() - t0:.1f} s", flush=True)


def pct(xs: list[float], q: float) -> float:
    """Quantile (nearest rank) in milliseconds."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def main(args: argparse.Namespace) -> dict[str, object]:
    """Prefill, run the workers for ``--duration`` seconds, print and return the figures."""
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.no_verify:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    prob = dict(DEFAULT_PROB)
    for spec in args.prob:
        k, _, v = spec.partition("=")
        p1, _, p2 = v.partition(",")
        prob[k.upper()] = (int(p1), int(p2 or 0))
    if args.prefill:
        await prefill(args, ctx)
    stats = Stats()
    workers = [Worker(args, ctx, stats, prob, args.seed * 100 + i) for i in range(args.clients)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + args.duration
    await asyncio.gather(*(w.run(deadline) for w in workers))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    mode = "login-each-cycle" if args.login_each_cycle else "persistent"
    print(f"{args.label} | {mode} | {args.clients} clients | {wall:.1f} s | tls {args.tls} | "
          f"{stats.cycles} cycles | {'no ' if args.no_pipelining else ''}pipelining | "
          f"mailbox ~{args.prefill}")
    print(f"{'command':10} {'count':>7} {'cmd/s':>9} {'p50 ms':>8} {'p95 ms':>8}")
    rows: dict[str, dict[str, float]] = {}
    total = 0
    for name in ["STARTTLS", *ORDER]:
        xs = stats.lat.get(name)
        if not xs:
            continue
        if name != "STARTTLS":
            total += len(xs)
        rows[name] = {"count": len(xs), "per_s": len(xs) / wall, "p50_ms": pct(xs, 0.5),
                      "p95_ms": pct(xs, 0.95)}
        print(f"{name:10} {len(xs):7d} {len(xs) / wall:9.1f} {pct(xs, 0.5):8.2f} "
              f"{pct(xs, 0.95):8.2f}")
    every = [x for n, xs in stats.lat.items() if n != "STARTTLS" for x in xs]
    p50, p95 = (pct(every, 0.5), pct(every, 0.95)) if every else (0.0, 0.0)
    print(f"{'TOTAL':10} {total:7d} {total / wall:9.1f} {p50:8.2f} {p95:8.2f}   "
          f"(imaptest states, STARTTLS excluded)")
    nerr = sum(stats.errors.values())
    top = sorted(stats.errors.items(), key=lambda kv: -kv[1])[:6]
    print(f"errors: {nerr} (tagged NO answers and lost connections; NO is not counted above)"
          + "".join(f"\n  {n} x {e}" for e, n in top))
    print(f"client CPU: {cpu:.2f} s over {wall:.1f} s wall ({100 * cpu / wall:.0f}% of one core)")
    if stats.lat.get("LOGIN"):
        print(f"LOGIN mean {statistics.fmean(stats.lat['LOGIN']) * 1000:.1f} ms")
    return {"label": args.label, "mode": mode, "clients": args.clients, "wall_s": wall,
            "cycles": stats.cycles, "total": total, "total_per_s": total / wall,
            "p50_ms": p50, "p95_ms": p95, "errors": nerr, "client_cpu_s": cpu, "rows": rows}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", choices=["implicit", "starttls"], default="implicit")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--sni", default="localhost", help="server_hostname checked in the cert")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", type=Path, required=True)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--login-each-cycle", action="store_true")
    ap.add_argument("--prefill", type=int, default=1000,
                    help="top INBOX up to this many messages first; DELETE keeps it near")
    ap.add_argument("--prob", action="append", default=[],
                    help="override a state's probability, e.g. search=20 or append=100,5")
    ap.add_argument("--no-pipelining", action="store_true",
                    help="one command in flight per client (imaptest pipelines by default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default="server")
    ap.add_argument("--json", type=Path, help="append the figures as one JSON line")
    ns = ap.parse_args(argv)
    ns.password = ns.password_file.read_text().strip()
    return ns


if __name__ == "__main__":
    a = parse_args()
    out = asyncio.run(main(a))
    if a.json:
        with a.json.open("a") as f:
            f.write(json.dumps(out) + "\n")
    sys.exit(0)
