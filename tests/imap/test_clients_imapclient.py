"""Each IMAP extension driven by a real ``imapclient`` (synchronous, in a worker thread) over
implicit TLS with the test CA.

imapclient has methods for SORT, THREAD, MULTIAPPEND, ENABLE, MOVE, UID EXPUNGE, IDLE and
FETCH modifiers (CHANGEDSINCE).  What it has no method for (ESEARCH/ESORT RETURN options,
SEARCHRES' SAVE, LIST-EXTENDED's RETURN, literal8 and CATENATE APPEND, SELECT's QRESYNC
parameter, COMPRESS) is sent through its own connection with :func:`_raw`, and COMPRESS's deflate
layer is put under imaplib's reader and writer (:class:`_Inflating`) as a client would.
"""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import imapclient
from imapclient.imapclient import SENT
from imapclient.response_parser import parse_fetch_response, parse_response

from tests.conftest import DOMAIN

from .conftest import Imap

_DATA = (  # (display name, mailbox, subject, day of March, message-id, references)
    ("Zoé Alpha", "a", "Bilan", 1, "t1", ""),
    ("Bernard", "b", "Re: Bilan", 3, "t2", "<t1@x.test>"),
    ("Claire", "c", "Ordonnance", 2, "t3", ""),
    ("Alice", "d", "Re: Re: Bilan", 4, "t4", "<t1@x.test> <t2@x.test>"),
    ("Yann", "y", "Ordonnance", 5, "t5", ""))


def corpus(i: int) -> bytes:
    """Message ``i`` (0-based) of the small SORT/THREAD corpus."""
    name, box, subject, day, mid, refs = _DATA[i]
    head = (f"From: {name} <{box}@x.test>\r\nTo: dr.martin@{DOMAIN}\r\nSubject: {subject}\r\n"
            f"Date: Mon, {day:02d} Mar 2026 10:00:00 +0100\r\nMessage-ID: <{mid}@x.test>\r\n")
    if refs:
        head += f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n"
    return (head + "\r\nBonjour.\r\n").encode()


def connect(imap: Imap) -> imapclient.IMAPClient:
    c = imapclient.IMAPClient(imap.host, port=imap.tls_port, ssl=True, ssl_context=imap.tls,
                              timeout=10)
    c.login(imap.user, imap.password)
    return c


def _raw(c: imapclient.IMAPClient, line: bytes, name: str) -> tuple[bytes, dict[str, list[Any]]]:
    """Send ``tag line`` on imapclient's connection (literals as LITERAL+); return the tagged
    text and the untagged responses, by type, that came with it."""
    imap = c._imap
    imap.untagged_responses.clear()
    tag = imap._new_tag()
    imap.send(tag + b" " + line + b"\r\n")
    typ, data = imap._command_complete(name, tag)
    assert typ == "OK", (line, data)
    untagged = {k: list(v) for k, v in imap.untagged_responses.items()}
    imap.untagged_responses.clear()
    return data[0], untagged


def _esearch(line: bytes) -> dict[bytes, Any]:
    """``(TAG "a") UID MIN 1 COUNT 3 ALL 1:2`` -> {b"MIN": 1, b"COUNT": 3, b"ALL": b"1:2"}."""
    items = parse_response([line])
    pairs = [x for x in items if not isinstance(x, tuple) and x != b"UID"]
    return {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}


async def _in_thread(imap: Imap, fn: Callable[[Callable[[Coroutine[Any, Any, Any]], Any]], Any]
                     ) -> Any:
    """Run ``fn(run)`` in a worker thread; ``run(coro)`` runs a coroutine on the server's loop."""
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    return await asyncio.to_thread(fn, run)


async def _fill(imap: Imap) -> None:
    for i in range(len(_DATA)):
        await imap.services.store.append(imap.account_id, "INBOX", corpus(i))


async def test_search_sort_thread(imap: Imap) -> None:
    """ESEARCH, SEARCHRES, SORT, ESORT, SORT=DISPLAY, THREAD=ORDEREDSUBJECT and REFERENCES."""
    await _fill(imap)

    def go(_: object) -> None:
        c = connect(imap)
        c.select_folder("INBOX")
        assert c.search(["SUBJECT", "Bilan"]) == [1, 2, 4]
        _, got = _raw(c, b"UID SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT Bilan", "SEARCH")
        assert _esearch(got["ESEARCH"][0]) == {b"MIN": 1, b"MAX": 4, b"COUNT": 3,
                                               b"ALL": b"1:2,4"}
        # SEARCHRES (RFC 5182): the result saved as $, then used by FETCH and SEARCH.
        _raw(c, b"UID SEARCH RETURN (SAVE) FROM y@x.test", "SEARCH")
        assert list(c.fetch("$", ["FLAGS"])) == [5]
        _raw(c, b"UID SEARCH RETURN (SAVE) OR UID $ SUBJECT Ordonnance", "SEARCH")
        assert list(c.fetch("$", ["UID"])) == [3, 5]
        # SORT (RFC 5256): ties broken by sequence number; REVERSE only reverses its key.
        assert c.sort(["DATE"]) == [1, 3, 2, 4, 5]
        assert c.sort(["REVERSE", "SUBJECT"]) == [3, 5, 1, 2, 4]
        assert c.sort(["FROM"]) == [1, 2, 3, 4, 5]
        assert c.sort(["DISPLAYFROM"]) == [4, 2, 3, 5, 1]  # RFC 5957: the display names
        _, got = _raw(c, b"UID SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL", "SORT")
        assert _esearch(got["ESEARCH"][0]) == {b"MIN": 1, b"MAX": 5, b"COUNT": 5,
                                               b"ALL": b"1,3,2,4:5"}  # ESORT keeps the order
        # THREAD (RFC 5256): REFERENCES links 1 -> 2 -> 4 by References and puts the two
        # "Ordonnance" under a dummy parent; ORDEREDSUBJECT groups by subject, by date.
        assert c.thread("REFERENCES") == ((1, 2, 4), ((3,), (5,)))
        assert c.thread("ORDEREDSUBJECT") == ((1, (2,), (4,)), (3, 5))
        c.logout()

    await _in_thread(imap, go)


async def test_list_extended_status_special_use(imap: Imap) -> None:
    await imap.services.store.append(imap.account_id, "INBOX", corpus(0))

    def go(_: object) -> None:
        c = connect(imap)
        c.create_folder("Dossiers/Cardiologie")
        assert c.find_special_folder(SENT) == "Sent"  # LIST (SPECIAL-USE)
        names = {name for _, _, name in c.list_folders()}
        assert {"INBOX", "Sent", "Drafts", "Trash", "Dossiers", "Dossiers/Cardiologie"} <= names
        _, got = _raw(c, b'LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)', "LIST")
        special = {parse_response([x])[2]: parse_response([x])[0] for x in got["LIST"]}
        assert b"INBOX" not in special and b"\\Sent" in special[b"Sent"]
        _, got = _raw(c, b'LIST "" "*" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))', "LIST")
        status = {parse_response([x])[0]: parse_response([x])[1] for x in got["STATUS"]}
        assert status[b"INBOX"] == (b"MESSAGES", 1, b"UNSEEN", 1)
        assert status[b"Dossiers/Cardiologie"] == (b"MESSAGES", 0, b"UNSEEN", 0)
        dossiers = [parse_response([x]) for x in got["LIST"]
                    if parse_response([x])[2] == b"Dossiers"]
        assert b"\\HasChildren" in dossiers[0][0]
        assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 1
        c.logout()

    await _in_thread(imap, go)


async def test_binary_fetch_and_literal8_append(imap: Imap) -> None:
    """RFC 3516: BINARY[] decodes the transfer encoding; APPEND takes a literal8 (~{n})."""
    payload = bytes(range(256)) * 4
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    msg = (b"From: a@x.test\r\nSubject: pdf\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: text/plain\r\n\r\nvoir PJ\r\n--b\r\n"
           b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + encoded + b"--b--\r\n")
    await imap.services.store.append(imap.account_id, "INBOX", msg)

    def go(_: object) -> None:
        c = connect(imap)
        c.select_folder("INBOX")
        got = c.fetch([1], ["BINARY.SIZE[1]", "BINARY.PEEK[1]"])[1]
        assert got[b"BINARY.SIZE[1]"] == 7 and got[b"BINARY[1]"] == b"voir PJ"
        # A part holding NUL comes as a literal8 (~{n}), which imaplib reads but imapclient's
        # FETCH parser does not: read imaplib's (head, literal) pair.
        _, res = _raw(c, b"UID FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])", "FETCH")
        head, data = res["FETCH"][0]
        assert head.endswith(b"BINARY.SIZE[2] %d BINARY[2] ~{%d}" % (len(payload), len(payload)))
        assert data == payload
        raw8 = (b"From: a@x.test\r\nSubject: 8bit\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                b"caf\xc3\xa9 \xff\xfe\r\n")  # NUL is refused: the store keeps no NUL
        text, _ = _raw(c, b"APPEND INBOX ~{%d+}\r\n" % len(raw8) + raw8, "APPEND")
        assert text.startswith(b"[APPENDUID ")
        uid = int(text.split()[2].rstrip(b"]"))
        assert c.fetch([uid], ["BINARY.PEEK[]"])[uid][b"BINARY[]"] == raw8
        c.logout()

    await _in_thread(imap, go)


async def test_multiappend_catenate_uidplus_move(imap: Imap) -> None:
    def go(_: object) -> None:
        c = connect(imap)
        validity = c.select_folder("INBOX")[b"UIDVALIDITY"]
        # MULTIAPPEND (RFC 3502): one command, one APPENDUID with every new UID.
        typ, res = c.multiappend("INBOX",
                                 [corpus(0), {"msg": corpus(1), "flags": [imapclient.SEEN]}])
        assert typ == "OK" and res[0].startswith(b"[APPENDUID %d 1:2]" % validity)
        # CATENATE (RFC 4469): message 1's header with a new body.
        body = b"Nouveau texte.\r\n"
        line = (b'APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER"'
                b" TEXT {%d+}\r\n%s)" % (validity, len(body), body))
        text, _ = _raw(c, line, "APPEND")
        assert text.startswith(b"[APPENDUID %d 3]" % validity)
        whole = c.fetch([3], ["BODY.PEEK[]"])[3][b"BODY[]"]
        assert whole == corpus(0).split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body
        # UIDPLUS (RFC 4315) and MOVE (RFC 6851).
        # imapclient's copy() drops the tagged text, where COPYUID is: sent raw.
        copied, _ = _raw(c, b"UID COPY 1 Archive", "COPY")
        assert copied.startswith(b"[COPYUID ")
        _, got = _raw(c, b"UID MOVE 2 Archive", "MOVE")
        assert got["OK"][0].startswith(b"[COPYUID ")  # RFC 6851 4.3: untagged, before EXPUNGE
        assert c.search() == [1, 3]
        c.add_flags([1, 3], [imapclient.DELETED])
        c.uid_expunge([3])  # only UID 3, though 1 is \Deleted too
        assert c.search() == [1]
        c.select_folder("Archive")
        assert c.search() == [1, 2]
        assert imapclient.SEEN in c.get_flags([2])[2]
        c.logout()

    await _in_thread(imap, go)


async def test_utf8_accept(imap: Imap) -> None:
    def go(_: object) -> None:
        c = connect(imap)
        assert c.enable("UTF8=ACCEPT") == [b"UTF8=ACCEPT"]
        c.folder_encode = False  # UTF-8 names as they are (RFC 6855 3) ...
        c._imap._mode_utf8()  # ... which imaplib sends once told (its own enable() does this)
        c.create_folder("Résultats")
        assert b"R\xc3\xa9sultats" in [n for _, _, n in c.list_folders()]
        msg = "From: Zoé <z@x.test>\r\nSubject: Résultat d'IRM\r\n\r\nvoilà\r\n".encode()
        text, _ = _raw(c, b'APPEND "R\xc3\xa9sultats" UTF8 (~{%d+}\r\n%s)' % (len(msg), msg),
                       "APPEND")
        assert text.startswith(b"[APPENDUID ")
        c.select_folder("Résultats")
        assert c.search(["SUBJECT", "résultat".encode()]) == [1]
        env = c.fetch([1], ["ENVELOPE"])[1][b"ENVELOPE"]
        assert env.subject == "Résultat d'IRM".encode()  # UTF-8, not an encoded word
        c.logout()

    await _in_thread(imap, go)


class _Inflating:
    """The reading side of a COMPRESS=DEFLATE stream (RFC 4978), under imaplib's readers."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.z = zlib.decompressobj(-15)
        self.buf = b""

    def _more(self) -> None:
        chunk = self.raw.read1(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += self.z.decompress(chunk)

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self.buf:
            self._more()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def close(self) -> None:
        self.raw.close()

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _compress(c: imapclient.IMAPClient) -> None:
    """COMPRESS DEFLATE (imapclient has no method for it), then deflate both ways."""
    text, _ = _raw(c, b"COMPRESS DEFLATE", "COMPRESS")
    imap = c._imap
    out = zlib.compressobj(6, zlib.DEFLATED, -15)
    imap.file = _Inflating(imap.file)
    imap.send = lambda data: imap.sock.sendall(out.compress(data) + out.flush(zlib.Z_SYNC_FLUSH))


async def test_compress_then_idle(imap: Imap) -> None:
    """COMPRESS=DEFLATE, then IDLE told of a delivery, a flag change and an expunge."""
    await _fill(imap)
    st = imap.services.store

    def go(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        c = connect(imap)
        _compress(c)
        c.select_folder("INBOX")
        assert c.thread("REFERENCES") == ((1, 2, 4), ((3,), (5,)))  # a long answer, inflated
        other = connect(imap)  # another client changes the mailbox
        other.select_folder("INBOX")
        c.idle()
        run(st.append(imap.account_id, "INBOX", corpus(2)))
        assert (6, b"EXISTS") in c.idle_check(timeout=5)
        other.add_flags([2], [imapclient.FLAGGED])
        seen = c.idle_check(timeout=5)
        assert any(r[0] == 2 and r[1] == b"FETCH" and imapclient.FLAGGED in r[2][-1]
                   for r in seen), seen
        other.delete_messages([1])
        other.expunge()
        seen = c.idle_check(timeout=5)
        seen += [] if (1, b"EXPUNGE") in seen else c.idle_check(timeout=5)
        assert (1, b"EXPUNGE") in seen, seen
        c.idle_done()
        assert c.search() == [2, 3, 4, 5, 6]
        other.logout()
        c.logout()

    await _in_thread(imap, go)


def _cache(c: imapclient.IMAPClient, uids: str = "1:*") -> dict[int, tuple[frozenset[bytes], int]]:
    return {u: (frozenset(d[b"FLAGS"]), d[b"MODSEQ"][0])
            for u, d in c.fetch(uids, ["FLAGS", "MODSEQ"]).items()}


def _uids(text: bytes) -> list[int]:
    """``3,5:7`` -> [3, 5, 6, 7]."""
    out: list[int] = []
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        out += range(int(lo), int(hi or lo) + 1)
    return out


async def test_thunderbird_like_qresync_session(imap: Imap) -> None:
    """Client A caches INBOX; client B adds, flags, expunges and moves; A resynchronises with
    ``SELECT INBOX (QRESYNC (...))`` and reaches exactly what a full fetch returns."""
    await _fill(imap)

    def go(_: object) -> None:
        a = connect(imap)
        assert a.enable("QRESYNC") == [b"QRESYNC"]
        sel = a.select_folder("INBOX")
        validity, modseq = sel[b"UIDVALIDITY"], sel[b"HIGHESTMODSEQ"]
        cache = _cache(a)
        assert sorted(cache) == [1, 2, 3, 4, 5]
        # CONDSTORE (RFC 7162 3.1): a conditional STORE that lost the race is refused.
        text, got = _raw(a, b"UID STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % modseq,
                         "STORE")
        assert not text.startswith(b"[MODIFIED") and got["FETCH"]
        cache = _cache(a)
        modseq = max(m for _, m in cache.values())  # A's own change is the latest
        a.logout()

        b = connect(imap)  # another client, while A is offline
        b.select_folder("INBOX")
        b.append("INBOX", corpus(0))
        b.add_flags([2], [imapclient.FLAGGED, b"$Urgent"])
        b.remove_flags([1], [imapclient.SEEN])
        b.add_flags([3, 6], [imapclient.DELETED])
        b.expunge()
        b.move([5], "Archive")
        b.add_flags([4], [imapclient.ANSWERED])
        text, _ = _raw(b, b"UID STORE 4 (UNCHANGEDSINCE 1) +FLAGS (\\Draft)", "STORE")
        assert text.startswith(b"[MODIFIED 4]")
        expected = _cache(b)
        b.logout()

        a = connect(imap)
        a.enable("QRESYNC")
        known = ",".join(map(str, sorted(cache))).encode()
        _, got = _raw(a, b"SELECT INBOX (QRESYNC (%d %d %s (1:5 %s)))"
                      % (validity, modseq, known, known), "SELECT")
        a._imap.state = "SELECTED"  # imaplib's own select() would have set it
        vanished = got["VANISHED"]
        assert len(vanished) == 1 and vanished[0].startswith(b"(EARLIER) ")
        gone = _uids(vanished[0].split()[1])
        for uid in gone:
            cache.pop(uid)
        changed = parse_fetch_response(got["FETCH"], uid_is_key=True)
        for uid, d in changed.items():
            cache[uid] = (frozenset(d[b"FLAGS"]), d[b"MODSEQ"][0])
        top = max(cache)
        # New messages, as a client fetches them (``top+1:*`` is ``top`` when none is new).
        cache.update({u: v for u, v in _cache(a, f"{top + 1}:*").items() if u > top})
        assert sorted(gone) == [3, 5] and sorted(changed) == [1, 2, 4]
        assert cache == expected == _cache(a)
        # CONDSTORE: only what changed since a modseq.
        newest = max(m for _, m in expected.values())
        assert list(a.fetch("1:*", ["FLAGS"], modifiers=[f"CHANGEDSINCE {newest - 1}"])) \
            == [u for u, (_, m) in expected.items() if m == newest]
        a.logout()

    await _in_thread(imap, go)
