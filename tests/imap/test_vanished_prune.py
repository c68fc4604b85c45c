"""Pruned QRESYNC tombstones (job ``prune_vanished``): a folder keeps its newest
``[imap] vanished_keep`` expunged UIDs; a client resynchronising from before them is told every
UID it knew that is gone (RFC 7162 3.2.5.2), and reaches the same state as a full fetch."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from mailserver.app import tombstone_prune
from mailserver.config import Config
from mailserver.store.models import Folder
from mailserver.store.vanished import JOB_PRUNE_VANISHED, ExpungedUid

from .conftest import Imap, Raw, message, open_raw
from .test_qresync import _append, _client_a, _fetches, _vanished


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    return dataclasses.replace(config, imap=dataclasses.replace(config.imap, vanished_keep=1))


async def _tombstones(imap: Imap) -> list[tuple[int, int]]:
    async with imap.services.db.session() as s:
        return [(r[0], r[1]) for r in await s.execute(
            select(ExpungedUid.uid, ExpungedUid.modseq).order_by(ExpungedUid.uid))]


def _lasting(state: dict[int, tuple[set[str], int]]) -> dict[int, tuple[set[str], int]]:
    """Without \\Recent, which belongs to a session (RFC 3501 2.3.2)."""
    return {u: (flags - {"\\Recent"}, m) for u, (flags, m) in state.items()}


async def _expunge(b: Raw, uids: str) -> int:
    """Expunge ``uids``; the folder's HIGHESTMODSEQ after it."""
    await b.cmd(f"UID STORE {uids} +FLAGS.SILENT (\\Deleted)")
    await b.cmd(f"UID EXPUNGE {uids}")
    status = await b.cmd("STATUS INBOX (HIGHESTMODSEQ)")
    return int(status[0].rsplit(b" ", 1)[1].rstrip(b")\r\n"))


async def test_resync_from_before_the_pruned_tombstones(imap: Imap) -> None:
    b = await open_raw(imap)
    for n in range(1, 11):
        await _append(b, "INBOX", message(n))
    a, validity, modseq, cache = await _client_a(imap)
    await a.cmd("LOGOUT")
    await b.cmd("SELECT INBOX")
    await _expunge(b, "2")
    middle = await _expunge(b, "4:5")
    await b.cmd("UID STORE 8 +FLAGS (\\Flagged)")
    await _expunge(b, "7")
    await _append(b, "INBOX", message(11))
    last = await _expunge(b, "11")  # never known to A
    assert [u for u, _ in await _tombstones(imap)] == [2, 4, 5, 7, 11]

    # The job, through the real runner: keeps the newest tombstone, schedules its next run.
    await tombstone_prune(imap.services).schedule()
    assert await imap.services.runner.run_due() == 1
    assert await _tombstones(imap) == [(11, last)]
    assert await imap.services.jobs.pending_count(JOB_PRUNE_VANISHED) == 1  # the next pass
    async with imap.services.db.session() as s:
        floor = (await s.execute(select(func.max(Folder.vanished_floor)))).scalar()
    assert floor == last - 1

    a = await open_raw(imap)
    await a.cmd("ENABLE QRESYNC")
    # From before the floor: every known UID that is gone (UID 11 was never known).
    res = await a.cmd(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:10))")
    assert _vanished(res, earlier=True) == [b"2,4:5,7"]
    for uid in (2, 4, 5, 7):
        cache.pop(uid)
    for uid, state in _fetches(res).items():
        cache[uid] = state
    assert _lasting(cache) == _lasting(_fetches(await a.cmd("UID FETCH 1:* (FLAGS MODSEQ)")))
    # Without known-uids: 1:UIDNEXT-1 stands for them, so 11 is told too (RFC 7162 3.2.5.2).
    res = await a.cmd(f"EXAMINE INBOX (QRESYNC ({validity} {modseq}))")
    assert _vanished(res, earlier=True) == [b"2,4:5,7,11"]
    res = await a.cmd(f"UID FETCH 1:9 (FLAGS) (CHANGEDSINCE {middle} VANISHED)")
    assert res[0] == b"* VANISHED (EARLIER) 2,4:5,7\r\n"
    # At or above the floor: exactly the tombstones above the modseq.
    res = await a.cmd(f"EXAMINE INBOX (QRESYNC ({validity} {last - 1}))")
    assert _vanished(res, earlier=True) == [b"11"]
    res = await a.cmd(f"EXAMINE INBOX (QRESYNC ({validity} {last}))")
    assert _vanished(res, earlier=True) == []
    await a.close()
    await b.close()


async def test_prune_keeps_every_row_of_the_oldest_kept_modseq(imap: Imap) -> None:
    """One EXPUNGE writes several rows at one modseq: they are kept or dropped together."""
    b = await open_raw(imap)
    for n in range(1, 6):
        await _append(b, "INBOX", message(n))
    await b.cmd("SELECT INBOX")
    await _expunge(b, "1")
    newest = await _expunge(b, "2:4")
    prune = tombstone_prune(imap.services)
    assert await prune.run_once() == 1  # keep=1, but the three rows of the newest expunge stay
    assert await _tombstones(imap) == [(2, newest), (3, newest), (4, newest)]
    assert await prune.run_once() == 0  # nothing more to drop
    await b.close()
