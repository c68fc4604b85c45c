"""Server CPU per IMAP command, by command, ours beside Dovecot (one client, one at a time).

The stress bench (``imap_suite.py``) gives commands/s and CPU per 1,000 commands of a mix;
this one says which command costs what. It starts ``mssante serve --workers 1`` on a fresh
PostgreSQL database and a private Dovecot (as ``imap_suite.py`` does), fills both INBOXes
with ``--prefill`` messages of the stress mix, then runs each command ``--repeat`` times from
one sequential client over TLS and prints the server CPU (process tree, plus PostgreSQL's
backends for ours) per command, in microseconds. One client and no concurrency: the figures
do not depend on scheduling, and a shared machine disturbs them little.

    .venv/bin/python bench/imap_cmdcost.py [--repeat 200] [--prefill 1000] [--no-reference]
"""

# ruff: noqa: S603, S607 - runs the local servers
from __future__ import annotations

import argparse
import contextlib
import imaplib
import random
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import imap_suite  # noqa: E402
from imap_stress import make_message  # noqa: E402

Command = Callable[[imaplib.IMAP4_SSL, int], object]
FETCH_ITEMS = "(UID FLAGS ENVELOPE INTERNALDATE BODYSTRUCTURE)"


def commands(prefill: int) -> list[tuple[str, Command, bool]]:
    """(name, how to send it given the round, whether it needs a selected INBOX)."""
    rnd = random.Random(7)  # noqa: S311 - message contents, not secrets

    def window(i: int) -> str:
        start = 1 + (i * 37) % max(1, prefill - 100)
        return f"{start}:{start + 99}"

    def few(i: int) -> str:
        return ",".join(str(1 + (i * 13 + k * 7) % prefill) for k in range(5))

    return [
        ("NOOP", lambda c, i: c.noop(), True),
        ("LIST", lambda c, i: c.list('""', "*"), False),
        ("STATUS", lambda c, i: c.status("INBOX", "(MESSAGES UNSEEN RECENT)"), False),
        ("SELECT", lambda c, i: c.select("INBOX"), False),
        ("FETCH 100 FLAGS", lambda c, i: c.fetch(window(i), "(UID FLAGS)"), True),
        ("FETCH 100 ENVELOPE+BODYSTRUCTURE", lambda c, i: c.fetch(window(i), FETCH_ITEMS),
         True),
        ("FETCH 1 BODY.PEEK[]", lambda c, i: c.fetch(str(1 + i % prefill), "(BODY.PEEK[])"),
         True),
        ("STORE 5 +FLAGS.SILENT", lambda c, i: c.store(
            few(i), "+FLAGS.SILENT", "($Label1)" if i % 2 else "(\\Flagged)"), True),
        ("STORE 5 -FLAGS.SILENT", lambda c, i: c.store(
            few(i), "-FLAGS.SILENT", "($Label1 \\Flagged)"), True),
        ("EXPUNGE (nothing deleted)", lambda c, i: c.expunge(), True),
        ("APPEND 4 KiB", lambda c, i: c.append("INBOX", None, None, make_message(i, rnd)),
         True),
        ("STORE 1 \\Deleted + EXPUNGE", lambda c, i: (
            c.store("1", "+FLAGS.SILENT", "(\\Deleted)"), c.expunge()), True),
        ("COPY 2", lambda c, i: c.copy(f"{1 + i % (prefill - 2)}:{2 + i % (prefill - 2)}",
                                       "INBOX"), True),
    ]


def connect(srv: imap_suite.Server) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=str(srv.cafile))
    ctx.check_hostname = False
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port, ssl_context=ctx)
    c.login(srv.user, srv.pw_file.read_text().strip())
    return c


def measure(srv: imap_suite.Server, repeat: int, prefill: int) -> dict[str, float]:
    """Microseconds of server CPU per command, by command."""
    out: dict[str, float] = {}
    c = connect(srv)
    try:
        for name, send, selected in commands(prefill):
            if selected:
                c.select("INBOX")
            for i in range(5):  # warm up (caches, prepared statements)
                send(c, i)
            before = sum(srv.cpu())
            for i in range(repeat):
                send(c, i)
            out[name] = 1e6 * (sum(srv.cpu()) - before) / repeat
            if name == "APPEND 4 KiB" or name.startswith("COPY"):  # back to the prefill size
                c.select("INBOX")
                c.store(f"{prefill + 1}:*", "+FLAGS.SILENT", "(\\Deleted)")
                c.expunge()
        before = sum(srv.cpu())
        for _ in range(max(1, repeat // 4)):
            connect(srv).logout()
        out["connect+LOGIN+LOGOUT"] = 1e6 * (sum(srv.cpu()) - before) / max(1, repeat // 4)
    finally:
        with contextlib.suppress(Exception):
            c.logout()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--prefill", type=int, default=1000)
    p.add_argument("--scheme", default="PLAIN", help="Dovecot's passwd-file scheme")
    p.add_argument("--database-url",
                   default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--no-reference", dest="reference", action="store_false")
    args = p.parse_args()
    args.workers, args.clients, args.seed = 1, 1, 1
    with contextlib.ExitStack() as stack:
        servers = [imap_suite.start_mssante(stack, args)]
        if args.reference:
            servers.append(imap_suite.start_dovecot(stack, args))
        for srv in servers:
            srv.stress(args, "persistent", 0)  # prefill
        figures = [measure(srv, args.repeat, args.prefill) for srv in servers]
    names = list(figures[0])
    head = "".join(f"{s.name[:16]:>18}" for s in servers)
    print(f"\n{'command':34}{head}{'ratio':>8}   (server CPU, us a command)")
    for name in names:
        row = "".join(f"{f[name]:18.0f}" for f in figures)
        ratio = f"{figures[0][name] / figures[1][name]:8.1f}" if len(figures) > 1 and \
            figures[1][name] else ""
        print(f"{name:34}{row}{ratio}")


if __name__ == "__main__":
    main()
