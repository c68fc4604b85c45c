"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) over TLS: PARTIAL windows, UPDATE notifications
caused by another session or by a delivery, CANCELUPDATE (raw lines and imaplib; every reply
is checked against the formal syntax by the ``imap_grammar`` fixture)."""

from __future__ import annotations

import asyncio
import imaplib

import pytest

from .conftest import Imap, Raw, message, open_raw


async def _seed(imap: Imap, n: int) -> None:
    for i in range(1, n + 1):
        await imap.services.store.append(imap.account_id, "INBOX", message(i))


def _esearch(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* ESEARCH")]


async def _selected(imap: Imap) -> Raw:
    raw = await open_raw(imap)
    res = await raw.cmd("SELECT INBOX")
    assert res[-1].split()[1] == b"OK", res
    return raw


async def test_partial_windows_on_search_and_sort(imap: Imap) -> None:
    await _seed(imap, 6)
    c = await _selected(imap)
    caps = (await c.cmd("CAPABILITY"))[0].split()
    assert b"CONTEXT=SEARCH" in caps and b"CONTEXT=SORT" in caps and b"ESORT" in caps
    assert (await c.cmd("UID SEARCH RETURN (PARTIAL 1:2) ALL", tag="p1"))[0] == \
        b'* ESEARCH (TAG "p1") UID PARTIAL (1:2 1:2)\r\n'
    # RFC 9394 3.1: -1 is the last result; the range is echoed as asked
    assert (await c.cmd("SEARCH RETURN (COUNT PARTIAL -1:-2) ALL", tag="p2"))[0] == \
        b'* ESEARCH (TAG "p2") COUNT 6 PARTIAL (-1:-2 5:6)\r\n'
    assert (await c.cmd("SEARCH RETURN (PARTIAL -3:-100) ALL", tag="p3"))[0] == \
        b'* ESEARCH (TAG "p3") PARTIAL (-3:-100 1:4)\r\n'
    assert (await c.cmd("SEARCH RETURN (PARTIAL 5:4) ALL", tag="p4"))[0] == \
        b'* ESEARCH (TAG "p4") PARTIAL (5:4 4:5)\r\n'  # RFC 5267 4.4: 500:400 is 400:500
    assert (await c.cmd("SEARCH RETURN (PARTIAL 10:20) ALL", tag="p5"))[0] == \
        b'* ESEARCH (TAG "p5") PARTIAL (10:20 NIL)\r\n'
    # ESORT: the window is taken in sort order
    assert (await c.cmd("UID SORT RETURN (PARTIAL 1:2 COUNT) (REVERSE ARRIVAL) UTF-8 ALL",
                        tag="p6"))[0] == b'* ESEARCH (TAG "p6") UID COUNT 6 PARTIAL (1:2 6,5)\r\n'
    assert (await c.cmd("SORT RETURN (PARTIAL -1:-2) (REVERSE ARRIVAL) UTF-8 ALL",
                        tag="p7"))[0] == b'* ESEARCH (TAG "p7") PARTIAL (-1:-2 2,1)\r\n'
    for bad in ("SEARCH RETURN (PARTIAL 1:2 ALL) ALL", "SEARCH RETURN (PARTIAL 1:-2) ALL",
                "SEARCH RETURN (PARTIAL 0:3) ALL", "SEARCH RETURN (PARTIAL 1:*) ALL",
                "SEARCH RETURN (PARTIAL) ALL", "SORT RETURN (SAVE) (ARRIVAL) UTF-8 ALL"):
        assert (await c.cmd(bad))[-1].split()[1] == b"BAD", bad
    # SAVE with PARTIAL alone saves the window (RFC 9394 3.1)
    await c.cmd("SEARCH RETURN (SAVE PARTIAL -1:-2) ALL", tag="p8")
    assert (await c.cmd("UID SEARCH $", tag="p9"))[0] == b"* SEARCH 5 6\r\n"
    await c.close()


async def test_update_follows_flags_set_by_another_session_and_deliveries(imap: Imap) -> None:
    await _seed(imap, 3)
    a = await _selected(imap)
    b = await _selected(imap)
    res = await a.cmd("UID SEARCH RETURN (UPDATE COUNT) UNSEEN", tag="u1")
    assert res[0] == b'* ESEARCH (TAG "u1") UID COUNT 3\r\n' and res[-1].startswith(b"u1 OK")
    # tag reuse while the context lives is BAD (RFC 5267 4.3)
    assert (await a.cmd("UID SEARCH RETURN (UPDATE) ALL", tag="u1"))[-1].startswith(b"u1 BAD")
    # another session reads message 1: it leaves the UNSEEN results
    await b.cmd("STORE 1 +FLAGS (\\Seen)")
    res = await a.cmd("NOOP")
    assert b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 1)\r\n' in res, res
    # a delivery while A idles: ADDTO comes after EXISTS, during IDLE
    await a.write(b"i1 IDLE\r\n")
    assert (await a.line()).startswith(b"+ ")
    await imap.services.store.append(imap.account_id, "INBOX", message(4))
    pushed = [await a.line(timeout=5) for _ in range(3)]
    assert pushed[0] == b"* 4 EXISTS\r\n" and pushed[1].endswith(b" RECENT\r\n"), pushed
    assert pushed[2] == b'* ESEARCH (TAG "u1") UID ADDTO (0 4)\r\n', pushed
    await a.write(b"DONE\r\n")
    assert (await a.until("i1"))[-1].startswith(b"i1 OK")
    # marked unseen again by the other session: back in the results
    await b.cmd("NOOP")
    await b.cmd("UID STORE 1 -FLAGS (\\Seen)")
    res = await a.cmd("NOOP")
    assert b'* ESEARCH (TAG "u1") UID ADDTO (0 1)\r\n' in res, res
    # an expunge by the other session: REMOVEFROM before the EXPUNGE
    await b.cmd("UID STORE 2 +FLAGS (\\Deleted)")
    await b.cmd("EXPUNGE")
    res = await a.cmd("NOOP")
    i = res.index(b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 2)\r\n')
    assert res[i + 1] == b"* 2 EXPUNGE\r\n", res
    # CANCELUPDATE: no more notifications; an unknown tag is BAD
    assert (await a.cmd('CANCELUPDATE "u1"'))[-1].split()[1] == b"OK"
    assert (await a.cmd('CANCELUPDATE "u1"'))[-1].split()[1] == b"BAD"
    assert (await a.cmd("CANCELUPDATE u1"))[-1].split()[1] == b"BAD"  # quoted only
    await b.cmd("UID STORE 3 +FLAGS (\\Seen)")
    assert not _esearch(await a.cmd("NOOP"))
    await a.close()
    await b.close()


async def test_sort_update_gives_positions_in_sort_order(imap: Imap) -> None:
    await _seed(imap, 3)
    a = await _selected(imap)
    b = await _selected(imap)
    res = await a.cmd("SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 ALL", tag="s1")
    assert res[0] == b'* ESEARCH (TAG "s1") ALL 3,2,1\r\n'
    await imap.services.store.append(imap.account_id, "INBOX", message(4))
    res = await a.cmd("NOOP")
    assert res[0] == b"* 4 EXISTS\r\n" and res[1].endswith(b" RECENT\r\n"), res
    assert res[2] == b'* ESEARCH (TAG "s1") ADDTO (1 4)\r\n', res
    # results now 4,3,2,1: message 2 sits at position 3, and is numbered 2 until EXPUNGE
    await b.cmd("NOOP")
    await b.cmd("STORE 2 +FLAGS (\\Deleted)")
    await b.cmd("EXPUNGE")
    res = await a.cmd("NOOP")
    assert res[:2] == [b'* ESEARCH (TAG "s1") REMOVEFROM (3 2)\r\n', b"* 2 EXPUNGE\r\n"], res
    # flags do not move a message in a SORT by arrival: no update
    await b.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert not _esearch(await a.cmd("NOOP"))
    # the context ends with the selection (RFC 5267 4.3)
    await a.cmd("SELECT INBOX")
    await imap.services.store.append(imap.account_id, "INBOX", message(5))
    assert not _esearch(await a.cmd("NOOP"))
    await a.close()
    await b.close()


async def test_own_store_and_too_many_contexts(imap: Imap) -> None:
    await _seed(imap, 2)
    a = await _selected(imap)
    res = await a.cmd("SEARCH RETURN (UPDATE) FLAGGED", tag="f1")
    assert res[0] == b'* ESEARCH (TAG "f1")\r\n'
    res = await a.cmd("STORE 2 +FLAGS (\\Flagged)")
    assert b'* ESEARCH (TAG "f1") ADDTO (0 2)\r\n' in res, res
    for n in range(15):
        assert (await a.cmd("UID SEARCH RETURN (UPDATE) ALL", tag=f"g{n}"))[-1].split()[1] \
            == b"OK"
    res = await a.cmd("UID SEARCH RETURN (UPDATE COUNT) ALL", tag="over")
    assert res[0] == b'* ESEARCH (TAG "over") UID COUNT 2\r\n'
    assert res[1].startswith(b'* NO [NOUPDATE "over"]') and res[-1].startswith(b"over OK")
    await a.close()


async def test_imaplib_reads_partial_and_update(imap: Imap,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    await _seed(imap, 5)
    monkeypatch.setitem(imaplib.Commands, "CANCELUPDATE", ("SELECTED",))  # unknown to imaplib

    def go() -> dict[str, object]:
        m = imaplib.IMAP4_SSL(imap.host, imap.tls_port, ssl_context=imap.tls)
        m.login(imap.user, imap.password)
        m.select("INBOX")
        out: dict[str, object] = {}
        tag = f"{m.tagpre.decode()}{m.tagnum}"  # the tag imaplib gives the next command
        typ, dat = m._simple_command("UID", "SEARCH", "RETURN",  # noqa: SLF001
                                     "(PARTIAL -1:-2 UPDATE)", "ALL")
        out["partial"] = m._untagged_response(typ, dat, "ESEARCH")  # noqa: SLF001
        m.store("1", "+FLAGS", "(\\Deleted)")
        m.expunge()
        out["update"] = m._untagged_response("OK", [None], "ESEARCH")  # noqa: SLF001
        out["cancel"] = m._simple_command("CANCELUPDATE", f'"{tag}"')  # noqa: SLF001
        m.logout()
        return out

    r = await asyncio.to_thread(go)
    partial = r["partial"]
    assert isinstance(partial, tuple) and partial[0] == "OK"
    assert partial[1][0].endswith(b"UID PARTIAL (-1:-2 4:5)"), partial
    update = r["update"]
    assert isinstance(update, tuple)
    assert any(x.endswith(b"UID REMOVEFROM (0 1)") for x in update[1]), update
    assert r["cancel"] == ("OK", [b"CANCELUPDATE completed"])


async def test_sort_update_on_flag_changes_keeps_sort_positions(imap: Imap) -> None:
    await _seed(imap, 4)
    a = await _selected(imap)
    b = await _selected(imap)
    res = await a.cmd("UID SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 UNSEEN", tag="s2")
    assert res[0] == b'* ESEARCH (TAG "s2") UID ALL 4,3,2,1\r\n'
    await b.cmd("UID STORE 2:3 +FLAGS (\\Seen)")
    res = await a.cmd("NOOP")
    assert b'* ESEARCH (TAG "s2") UID REMOVEFROM (2 3,2)\r\n' in res, res  # results 4,1
    await b.cmd("UID STORE 3 -FLAGS (\\Seen)")
    res = await a.cmd("NOOP")
    assert b'* ESEARCH (TAG "s2") UID ADDTO (2 3)\r\n' in res, res  # results 4,3,1
    await a.close()
    await b.close()
