"""What each command of the stress mix (bench/README-imap-stress.md) costs in database round
trips (statements and transaction control), with the poll that follows it. On PostgreSQL each
round trip is about a millisecond of server CPU, so these bounds are behaviour.

``pytest -s tests/imap/test_round_trips.py`` prints the figures of each command."""

from __future__ import annotations

import os

import pytest

from tests.imap.conftest import Imap, Raw, message, open_raw
from tests.statements import recorded_round_trips

PG = bool(os.environ.get("MSSANTE_TEST_DATABASE_URL"))


async def _cost(imap: Imap, c: Raw, text: str | bytes, costs: dict[str, list[str]],
                name: str) -> list[bytes]:
    await imap.services.audit.flush()  # the batched audit rows of the commands before
    with recorded_round_trips(imap.services.db) as seen:
        lines = await c.cmd(text)
    assert lines[-1].split()[1] == b"OK", lines
    costs[name] = list(seen)
    return lines


async def _append(c: Raw, n: int) -> list[bytes]:
    body = message(n, body="Bonjour.\r\n" + "x" * 70 + "\r\n" * 40)
    c.n += 1
    tag = f"t{c.n}"
    await c.write(f"{tag} APPEND INBOX {{{len(body)}}}\r\n".encode())
    assert (await c.line()).startswith(b"+")
    await c.write(body + b"\r\n")
    return await c.until(tag)


async def measure(imap: Imap) -> dict[str, list[str]]:
    """The round trips of each command of the mix, on a 30-message INBOX."""
    imap.services.events.complete = True  # as the PostgreSQL listener does while connected
    for n in range(30):
        await imap.services.store.append(imap.account_id, "INBOX", message(n))
    costs: dict[str, list[str]] = {}
    c = await open_raw(imap, login=False)
    other = await open_raw(imap)
    try:
        await _cost(imap, c, f'LOGIN "{imap.user}" "{imap.password}"', costs, "LOGIN")
        await _cost(imap, c, 'LIST "" *', costs, "LIST")
        await _cost(imap, c, "STATUS INBOX (MESSAGES UNSEEN RECENT)", costs, "STATUS")
        await _cost(imap, c, "SELECT INBOX", costs, "SELECT")
        await _cost(imap, c, "NOOP", costs, "NOOP (nothing new)")
        await _cost(imap, c, "FETCH 1:30 (UID FLAGS ENVELOPE INTERNALDATE BODYSTRUCTURE)",
                    costs, "FETCH 1:30 meta (summaries built)")
        await _cost(imap, c, "FETCH 1:30 (UID FLAGS ENVELOPE INTERNALDATE BODYSTRUCTURE)",
                    costs, "FETCH 1:30 meta")
        await _cost(imap, c, "FETCH 7 (BODY.PEEK[])", costs, "FETCH body")
        await _cost(imap, c, "COPY 3:4 INBOX", costs, "COPY 2 (+claim)")
        lines = await _cost(imap, c, "STORE 1:5 +FLAGS.SILENT (\\Seen $Label1)", costs,
                            "STORE 5 +FLAGS.SILENT")
        # Its own change wakes no poll, yet the new keyword is announced as a poll would.
        assert any(ln.startswith(b"* FLAGS (") and b"$Label1" in ln for ln in lines), lines
        await _cost(imap, c, "STORE 2:4 -FLAGS.SILENT (\\Seen)", costs,
                    "STORE 3 -FLAGS.SILENT")
        await _cost(imap, c, "STORE 28:32 +FLAGS.SILENT (\\Deleted)", costs,
                    "STORE range \\Deleted")
        await _cost(imap, c, "EXPUNGE", costs, "EXPUNGE 5")
        await _cost(imap, c, "EXPUNGE", costs, "EXPUNGE nothing")
        with recorded_round_trips(imap.services.db) as seen:
            lines = await _append(c, 99)
        assert lines[-1].split()[1] == b"OK", lines
        costs["APPEND 4 KiB (+claim)"] = list(seen)
        await other.cmd("SELECT INBOX")
        await _append(other, 100)
        await imap.services.store.append(imap.account_id, "INBOX", message(101))
        await _cost(imap, c, "NOOP", costs, "NOOP (new mail, claim)")
        await other.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
        await _cost(imap, c, "NOOP", costs, "NOOP (a flag changed)")
        await _cost(imap, c, "LOGOUT", costs, "LOGOUT")
    finally:
        await c.close()
        await other.close()
    return costs


#: Upper bounds of round trips (PostgreSQL): the command and the poll after it. Before the
#: set-based changes: STORE 9, EXPUNGE 11 (4 with nothing to do), COPY 16, APPEND 12, a poll
#: that claims \Recent 5. A write batch sends its BEGIN with its write locks (one simple
#: query: ``Database._begin``), and takes no SAVEPOINT per op.
BOUNDS = {
    "STORE 5 +FLAGS.SILENT": 5,  # BEGIN + write locks, lock and read, UPDATE both,
    "STORE 3 -FLAGS.SILENT": 5,  # audit + NOTIFY, COMMIT
    "STORE range \\Deleted": 5,
    "EXPUNGE 5": 6,  # a read, BEGIN + locks, lock, DELETE and UPDATE, audit + NOTIFY, COMMIT
    "EXPUNGE nothing": 1,
    "COPY 2 (+claim)": 9,
    "APPEND 4 KiB (+claim)": 8,
    "NOOP (nothing new)": 0,
    "NOOP (new mail, claim)": 2,
    "NOOP (a flag changed)": 1,
    "LIST": 1,
    "FETCH body": 3,
    # rows, key check, the 30 messages in one read (was one each: 36), then the cache's write
    "FETCH 1:30 meta (summaries built)": 7,
}


async def test_round_trips_of_the_stress_mix(imap: Imap) -> None:
    costs = await measure(imap)
    width = max(map(len, costs))
    for name, seen in costs.items():
        print(f"{name:<{width}} {len(seen):3d}  " + " | ".join(
            " ".join(s.split())[:48] for s in seen))
    if not PG:
        pytest.skip("round-trip bounds are for PostgreSQL")
    over = {n: len(costs[n]) for n, bound in BOUNDS.items() if len(costs[n]) > bound}
    assert not over, over
