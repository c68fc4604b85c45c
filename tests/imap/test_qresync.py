"""QRESYNC (RFC 7162 3.2) over the real server: a Thunderbird-like client A caches a mailbox,
client B (another connection) adds, flags and expunges; A comes back with ``SELECT INBOX
(QRESYNC (...))`` and is told exactly what vanished and what changed; while selected, A gets
``VANISHED`` instead of ``EXPUNGE``."""

from __future__ import annotations

import re

from .conftest import Imap, Raw, message, open_raw


async def _append(c: Raw, mailbox: str, data: bytes) -> None:
    await c.write(b"ap APPEND %s {%d+}\r\n%s\r\n" % (mailbox.encode(), len(data), data))
    assert (await c.until("ap"))[-1].startswith(b"ap OK")


def _code(lines: list[bytes], name: bytes) -> int:
    for x in lines:
        if (m := re.search(rb"\[" + name + rb" (\d+)\]", x)):
            return int(m.group(1))
    raise AssertionError(lines)


def _fetches(lines: list[bytes]) -> dict[int, tuple[set[str], int]]:
    """uid -> (flags, modseq) from ``* n FETCH (UID u FLAGS (...) MODSEQ (m))`` lines."""
    out = {}
    for x in lines:
        m = re.match(rb"\* \d+ FETCH \(.*UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)", x)
        if m:
            out[int(m.group(1))] = (set(m.group(2).decode().split()), int(m.group(3)))
    return out


def _vanished(lines: list[bytes], earlier: bool) -> list[bytes]:
    head = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    return [x[len(head):].strip() for x in lines if x.startswith(head)
            and (earlier or not x.startswith(b"* VANISHED (EARLIER)"))]


async def _client_a(imap: Imap) -> tuple[Raw, int, int, dict[int, tuple[set[str], int]]]:
    a = await open_raw(imap)
    assert (await a.cmd("ENABLE QRESYNC"))[0] == b"* ENABLED QRESYNC\r\n"
    sel = await a.cmd("SELECT INBOX")
    cache = _fetches(await a.cmd("UID FETCH 1:* (FLAGS MODSEQ)"))
    return a, _code(sel, b"UIDVALIDITY"), _code(sel, b"HIGHESTMODSEQ"), cache


async def test_resync_after_another_client_changed_the_mailbox(imap: Imap) -> None:
    b = await open_raw(imap)
    for n in range(1, 7):
        await _append(b, "INBOX", message(n))
    a, validity, modseq, cache = await _client_a(imap)
    assert sorted(cache) == [1, 2, 3, 4, 5, 6]
    assert (await a.cmd("LOGOUT"))[-1].split()[1] == b"OK"  # A goes offline

    await b.cmd("SELECT INBOX")
    await _append(b, "INBOX", message(7))
    await b.cmd("UID STORE 2 +FLAGS (\\Flagged $Urgent)")
    await b.cmd("UID STORE 3,5,7 +FLAGS (\\Deleted)")
    await b.cmd("EXPUNGE")
    await b.cmd("UID MOVE 6 Archive")

    a = await open_raw(imap)
    await a.cmd("ENABLE QRESYNC")
    res = await a.cmd(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:6))")
    assert res[-1].split()[1] == b"OK"
    assert _vanished(res, earlier=True) == [b"3,5:6"]  # 7 was never known to A
    changed = _fetches(res)
    assert sorted(changed) == [2]
    assert changed[2][0] >= {"\\Flagged", "$Urgent"}
    assert changed[2][1] > modseq
    assert b"* 3 EXISTS\r\n" in res  # 1, 2 and 4 remain
    # Without known-uids, every expunge after the modseq is reported (7 included).
    res = await a.cmd(f"EXAMINE INBOX (QRESYNC ({validity} {modseq}))")
    assert res[0] == b"* OK [CLOSED] previous mailbox closed\r\n"
    assert _vanished(res, earlier=True) == [b"3,5:7"]
    # A stale UIDVALIDITY: no resync data, the client must start again.
    res = await a.cmd(f"SELECT INBOX (QRESYNC ({validity + 1} {modseq}))")
    assert not _vanished(res, earlier=True) and not _fetches(res)
    await a.close()
    await b.close()


async def test_uid_fetch_changedsince_vanished(imap: Imap) -> None:
    b = await open_raw(imap)
    for n in range(1, 5):
        await _append(b, "INBOX", message(n))
    a, _, modseq, _ = await _client_a(imap)
    await b.cmd("SELECT INBOX")
    await b.cmd("UID STORE 1 +FLAGS (\\Seen)")
    await b.cmd("UID STORE 4 +FLAGS (\\Deleted)")
    await b.cmd("UID EXPUNGE 4")
    res = await a.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert res[0] == b"* VANISHED (EARLIER) 4\r\n"
    assert sorted(_fetches(res)) == [1]
    # Outside the UID set: not reported.
    res = await a.cmd(f"UID FETCH 1:2 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert not _vanished(res, earlier=True)
    # RFC 7162 3.2.6: VANISHED needs UID FETCH and CHANGEDSINCE.
    assert (await a.cmd(f"FETCH 1:* FLAGS (CHANGEDSINCE {modseq} VANISHED)"))[-1].split()[1] \
        == b"BAD"
    assert (await a.cmd("UID FETCH 1:* FLAGS (VANISHED)"))[-1].split()[1] == b"BAD"
    await a.close()
    await b.close()


async def test_live_vanished_while_selected(imap: Imap) -> None:
    b = await open_raw(imap)
    for n in range(1, 5):
        await _append(b, "INBOX", message(n))
    a, _, _, _ = await _client_a(imap)
    await b.cmd("SELECT INBOX")
    await b.cmd("UID STORE 2:3 +FLAGS (\\Deleted)")
    res = await b.cmd("EXPUNGE")
    assert b"* 3 EXPUNGE\r\n" in res  # B did not enable QRESYNC
    res = await a.cmd("NOOP")
    assert _vanished(res, earlier=False) == [b"2:3"]
    assert not any(x.endswith(b" EXPUNGE\r\n") for x in res)
    # A's own expunge is told the same way.
    await a.cmd("UID STORE 4 +FLAGS (\\Deleted)")
    res = await a.cmd("EXPUNGE")
    assert _vanished(res, earlier=False) == [b"4"]
    await a.close()
    await b.close()


async def test_qresync_select_needs_enable(imap: Imap) -> None:
    c = await open_raw(imap)
    res = await c.cmd("SELECT INBOX (QRESYNC (1 1))")
    assert res[-1].split()[1] == b"BAD"
    assert b"QRESYNC" in (await c.cmd("CAPABILITY"))[0]
    await c.cmd("SELECT INBOX")
    res = await c.cmd("SELECT INBOX")
    assert not any(b"[CLOSED]" in x for x in res)  # only once QRESYNC is enabled
    await c.close()
