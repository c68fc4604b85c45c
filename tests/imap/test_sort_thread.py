"""ESEARCH, SEARCHRES, SORT, SORT=DISPLAY and THREAD over TLS: Python's imaplib and raw lines
(every reply also checked against the formal syntax by the ``imap_grammar`` fixture)."""

from __future__ import annotations

import asyncio
import imaplib

from tests.conftest import DOMAIN

from .conftest import Imap, open_raw

MESSAGES = [  # (from, subject, date, message-id, references)
    ('"Zoé Martin" <zoe@x.example>', "Compte rendu", "Mon, 2 Mar 2026 10:00:00 +0100",
     "<a@x>", ""),
    ("alice@y.example", "Re: Compte rendu", "Mon, 2 Mar 2026 12:00:00 +0100", "<b@x>", "<a@x>"),
    ("Bob <bob@z.example>", "Analyse", "Sun, 1 Mar 2026 09:00:00 +0000", "<c@x>", ""),
    ("carl@w.example", "RE: [suivi] Compte rendu", "Tue, 3 Mar 2026 08:00:00 +0000", "<d@x>",
     "<a@x> <b@x>"),
]


def _raw(i: int) -> bytes:
    frm, subject, date, mid, refs = MESSAGES[i]
    body = "x" * (10 * (4 - i))
    return (f"From: {frm}\r\nTo: dr.martin@{DOMAIN}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: {mid}\r\n" + (f"References: {refs}\r\n" if refs else "")
            + f"\r\n{body}\r\n").encode()


async def _seed(imap: Imap) -> None:
    for i in range(len(MESSAGES)):
        await imap.services.store.append(imap.account_id, "INBOX", _raw(i))


async def test_sort_and_thread_with_imaplib(imap: Imap, imap_grammar: list[bytes]) -> None:
    await _seed(imap)

    def go() -> dict[str, object]:
        m = imaplib.IMAP4_SSL(imap.host, imap.tls_port, ssl_context=imap.tls)
        m.login(imap.user, imap.password)
        out: dict[str, object] = {"caps": m.capabilities}
        m.select("INBOX")
        out["date"] = m.sort("(DATE)", "UTF-8", "ALL")
        out["subject"] = m.sort("(SUBJECT REVERSE DATE)", "UTF-8", "ALL")
        out["from"] = m.sort("(FROM)", "UTF-8", "ALL")
        out["displayfrom"] = m.sort("(DISPLAYFROM)", "UTF-8", "ALL")
        out["size"] = m.uid("SORT", "(REVERSE SIZE)", "UTF-8", "SUBJECT", "compte")
        out["refs"] = m.thread("REFERENCES", "UTF-8", "ALL")
        out["ordered"] = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
        try:
            m._simple_command("SORT", "(NOPE)", "UTF-8", "ALL")  # noqa: SLF001
        except imaplib.IMAP4.error as exc:
            out["bad"] = str(exc)
        out["charset"] = m._simple_command("SORT", "(DATE)", "KOI8-R", "ALL")  # noqa: SLF001
        m.logout()
        return out

    r = await asyncio.to_thread(go)
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT",
                "ESEARCH", "SEARCHRES"):
        assert cap in r["caps"]  # type: ignore[operator]
    assert r["date"] == ("OK", [b"3 1 2 4"])
    assert r["subject"] == ("OK", [b"3 4 2 1"])  # base subject, then the newest first
    assert r["from"] == ("OK", [b"2 3 4 1"])  # alice bob carl zoe
    assert r["displayfrom"] == ("OK", [b"2 3 4 1"])  # alice@... Bob carl@... Zoé
    assert r["size"] == ("OK", [b"1 2 4"])
    assert r["refs"] == ("OK", [b"(3)(1 2 4)"])
    assert r["ordered"] == ("OK", [b"(3)(1 (2)(4))"])
    assert "BAD" in str(r["bad"]) and r["charset"][0] == "NO"  # type: ignore[index]
    assert any(line.startswith(b"* THREAD (3)") for line in imap_grammar)


async def test_esearch_and_searchres(imap: Imap) -> None:
    await _seed(imap)
    c = await open_raw(imap)
    await c.cmd("SELECT INBOX")
    res = await c.cmd("SEARCH RETURN (MIN MAX COUNT) SUBJECT compte", tag="e1")
    assert res[0] == b'* ESEARCH (TAG "e1") MIN 1 MAX 4 COUNT 3\r\n'
    res = await c.cmd("UID SEARCH RETURN () ALL", tag="e2")
    assert res[0] == b'* ESEARCH (TAG "e2") UID ALL 1:4\r\n'
    res = await c.cmd("SEARCH RETURN (MIN ALL) SUBJECT nothing", tag="e3")
    assert res[0] == b'* ESEARCH (TAG "e3")\r\n'
    res = await c.cmd("SEARCH RETURN (SAVE) FROM bob", tag="e4")
    assert res == [b"e4 OK SEARCH completed\r\n"]  # SAVE alone: no ESEARCH
    res = await c.cmd("FETCH $ (UID)")
    assert res[0] == b"* 3 FETCH (UID 3)\r\n" and len(res) == 2
    res = await c.cmd("SEARCH RETURN (SAVE MAX) SUBJECT compte", tag="e5")
    assert res[0] == b'* ESEARCH (TAG "e5") MAX 4\r\n'
    res = await c.cmd("SEARCH $ OR 1 2")
    assert res[0] == b"* SEARCH\r\n"
    res = await c.cmd("UID SEARCH UID $")
    assert res[0] == b"* SEARCH 4\r\n"
    res = await c.cmd("SEARCH RETURN (COUNT MODSEQ) ALL", tag="e6")
    assert res[-1].startswith(b"e6 BAD")
    res = await c.cmd("SEARCH RETURN (COUNT) MODSEQ 1", tag="e7")
    assert res[0].startswith(b'* ESEARCH (TAG "e7") COUNT 4 MODSEQ ')
    await c.cmd("STORE $ +FLAGS (\\Flagged)")
    res = await c.cmd("SEARCH FLAGGED")
    assert res[0] == b"* SEARCH 4\r\n"
    await c.cmd("UID EXPUNGE 4")  # not \Deleted: nothing goes
    await c.cmd("SELECT INBOX")  # RFC 5182: SELECT empties $
    res = await c.cmd("FETCH $ (UID)")
    assert res[0].endswith(b"OK FETCH completed\r\n")
    await c.close()


async def test_sort_follows_new_and_expunged_messages(imap: Imap) -> None:
    await _seed(imap)
    c = await open_raw(imap)
    await c.cmd("SELECT INBOX")
    assert (await c.cmd("SORT (REVERSE ARRIVAL) UTF-8 ALL"))[0] == b"* SORT 4 3 2 1\r\n"
    await imap.services.store.append(imap.account_id, "INBOX", _raw(2))  # "Analyse" again
    res = await c.cmd("UID SORT (REVERSE ARRIVAL) UTF-8 ALL")  # the session's view, then EXISTS
    assert res[:2] == [b"* SORT 4 3 2 1\r\n", b"* 5 EXISTS\r\n"]
    assert (await c.cmd("UID SORT (REVERSE ARRIVAL) UTF-8 ALL"))[0] == b"* SORT 5 4 3 2 1\r\n"
    await c.cmd("STORE 4 +FLAGS.SILENT (\\Deleted)")
    await c.cmd("EXPUNGE")
    # The copy has the same Message-ID: its own container, gathered with 3 by base subject.
    assert (await c.cmd("THREAD REFERENCES UTF-8 ALL"))[0] == b"* THREAD ((3)(4))(1 2)\r\n"
    assert (await c.cmd("SORT (SUBJECT) UTF-8 UNDELETED"))[0] == b"* SORT 3 4 1 2\r\n"
    # ALL's items are kept for the session: the charset is still checked, and another
    # session's expunge renumbers them once this session is told.
    assert (await c.cmd("THREAD REFERENCES UTF-8 ALL"))[0] == b"* THREAD ((3)(4))(1 2)\r\n"
    assert b"NO [BADCHARSET" in (await c.cmd("SORT (DATE) BOGUS ALL"))[-1]
    other = await open_raw(imap)
    await other.cmd("SELECT INBOX")
    await other.cmd("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    await other.cmd("UID EXPUNGE 1")
    await other.close()
    assert b"* 1 EXPUNGE\r\n" in await c.cmd("NOOP")
    assert (await c.cmd("THREAD REFERENCES UTF-8 ALL"))[0] == b"* THREAD ((2)(3))(1)\r\n"
    assert (await c.cmd("UID THREAD REFERENCES UTF-8 ALL"))[0] == b"* THREAD ((3)(5))(2)\r\n"
    await c.close()


async def test_esort(imap: Imap) -> None:
    await _seed(imap)
    c = await open_raw(imap)
    assert b" ESORT" in (await c.cmd("CAPABILITY"))[0]
    await c.cmd("SELECT INBOX")
    res = await c.cmd("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL", tag="s1")
    assert res[0] == b'* ESEARCH (TAG "s1") MIN 3 MAX 4 ALL 3,1:2,4 COUNT 4\r\n'
    res = await c.cmd("UID SORT RETURN () (REVERSE SUBJECT) UTF-8 SUBJECT nothing", tag="s2")
    assert res[0] == b'* ESEARCH (TAG "s2") UID\r\n'
    assert (await c.cmd("SORT RETURN (SAVE) (DATE) UTF-8 ALL"))[-1].split()[1] == b"BAD"
    await c.close()
