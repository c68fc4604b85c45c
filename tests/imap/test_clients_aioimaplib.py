"""Each IMAP extension driven by a real ``aioimaplib`` client (asyncio) over implicit TLS with
the test CA.

aioimaplib has methods for SEARCH, FETCH, STORE, APPEND, MOVE, UID EXPUNGE, ENABLE, IDLE and
the simple commands; every other command goes through its own ``Command``/``execute`` (see
:func:`_cmd`): a synchronous command (SELECT, APPEND, COMPRESS) gathers every untagged
response, an asynchronous one those named ``untagged``.  Its APPEND sends one literal after the
first continuation: a second message (MULTIAPPEND) or CATENATE's TEXT rides in it as a LITERAL+
(RFC 7888).  COMPRESS: aioimaplib knows the verb but has no deflate layer; :func:`_compress`
puts one between its protocol and transport.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import Any

import aioimaplib
from aioimaplib.aioimaplib import Command

from .conftest import Imap
from .test_clients_imapclient import corpus


async def _connect(imap: Imap) -> aioimaplib.IMAP4_SSL:
    c = aioimaplib.IMAP4_SSL(host=imap.host, port=imap.tls_port, ssl_context=imap.tls,
                             timeout=10)
    await c.wait_hello_from_server()
    assert (await c.login(imap.user, imap.password)).result == "OK"
    return c


async def _cmd(c: aioimaplib.IMAP4_SSL, name: str, *args: str, untagged: str | None = None,
               prefix: str = "", literal: bytes | None = None) -> list[bytes]:
    """Run ``name args`` through aioimaplib; return its lines, the tagged text last."""
    proto = c.protocol
    if literal is not None:
        proto.literal_data = literal
    res = await asyncio.wait_for(proto.execute(Command(
        name, proto.new_tag(), *args, prefix=prefix, untagged_resp_name=untagged,
        loop=asyncio.get_running_loop())), 10)
    assert res.result == "OK", res
    return [bytes(x) for x in res.lines]


def _esearch(line: bytes) -> dict[str, str]:
    """``(TAG "a") UID MIN 1 COUNT 3 ALL 1:2`` -> {"MIN": "1", "COUNT": "3", "ALL": "1:2"}."""
    words = re.sub(rb"^(ESEARCH )?\(TAG \"[^\"]*\"\) (UID )?", b"", line).decode().split()
    return dict(zip(words[::2], words[1::2], strict=True))


async def _fill(imap: Imap, n: int = 5) -> None:
    for i in range(n):
        await imap.services.store.append(imap.account_id, "INBOX", corpus(i))


async def test_search_sort_thread(imap: Imap) -> None:
    """ESEARCH, SEARCHRES, SORT, ESORT, SORT=DISPLAY, THREAD=ORDEREDSUBJECT and REFERENCES."""
    await _fill(imap)
    c = await _connect(imap)
    await c.select("INBOX")
    assert (await c.uid_search("SUBJECT", "Bilan", charset=None)).lines[0] == b"1 2 4"
    got = await _cmd(c, "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "SUBJECT", "Bilan",
                     prefix="UID", untagged="ESEARCH")
    assert _esearch(got[0]) == {"MIN": "1", "MAX": "4", "COUNT": "3", "ALL": "1:2,4"}
    await _cmd(c, "SEARCH", "RETURN", "(SAVE)", "FROM", "y@x.test", prefix="UID",
               untagged="ESEARCH")
    got = (await c.uid("fetch", "$", "(FLAGS)")).lines
    assert got[0].startswith(b"5 FETCH (UID 5 ") and len(got) == 2
    sort = {"DATE": "1 3 2 4 5", "REVERSE SUBJECT": "3 5 1 2 4", "DISPLAYFROM": "4 2 3 5 1",
            "REVERSE DISPLAYFROM": "1 5 3 2 4"}
    for keys, expected in sort.items():
        got = await _cmd(c, "SORT", f"({keys})", "UTF-8", "ALL", prefix="UID")
        assert got[0] == expected.encode(), keys
    got = await _cmd(c, "SORT", "RETURN", "(MIN MAX COUNT)", "(DATE)", "UTF-8", "ALL",
                     prefix="UID", untagged="ESEARCH")
    assert _esearch(got[0]) == {"MIN": "1", "MAX": "5", "COUNT": "5"}
    got = await _cmd(c, "THREAD", "REFERENCES", "UTF-8", "ALL", prefix="UID")
    assert got[0] == b"(1 2 4)((3)(5))"
    got = await _cmd(c, "THREAD", "ORDEREDSUBJECT", "UTF-8", "SUBJECT", "Bilan", prefix="UID")
    assert got[0] == b"(1 (2)(4))"
    await c.logout()


async def test_list_extended_status_special_use(imap: Imap) -> None:
    await _fill(imap, 2)
    c = await _connect(imap)
    assert (await c.create("Dossiers/Cardiologie")).result == "OK"
    got = await _cmd(c, "LIST", "(SPECIAL-USE)", '""', '"*"', untagged="LIST")
    names = {line.rsplit(b" ", 1)[1]: line for line in got[:-1]}
    assert set(names) == {b"Sent", b"Drafts", b"Trash", b"Archive", b"Junk"}
    assert b"\\Drafts" in names[b"Drafts"]
    got = await _cmd(c, "LIST", '""', '"Dossiers*"', "RETURN", "(CHILDREN)", untagged="LIST")
    assert got[:-1] == [b'(\\HasChildren) "/" Dossiers',
                        b'(\\HasNoChildren) "/" Dossiers/Cardiologie']
    got = await _cmd(c, "LIST", '""', '"*"', "RETURN", "(STATUS (MESSAGES UIDNEXT))",
                     untagged="STATUS")
    assert b"INBOX (MESSAGES 2 UIDNEXT 3)" in got
    assert b"Dossiers/Cardiologie (MESSAGES 0 UIDNEXT 1)" in got
    await c.logout()


async def test_binary_and_literal8_append(imap: Imap) -> None:
    """RFC 3516: BINARY[] of a quoted-printable part, BINARY.SIZE, APPEND of a literal8."""
    msg = (b"From: a@x.test\r\nSubject: qp\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\nR=C3=A9sultat normal=\r\n.\r\n")
    await imap.services.store.append(imap.account_id, "INBOX", msg)
    c = await _connect(imap)
    await c.select("INBOX")
    got = (await c.uid("fetch", "1", "(BINARY.SIZE[1] BINARY.PEEK[1])")).lines
    text = "Résultat normal.\r\n".encode()  # the soft line break joined, the last CRLF kept
    assert got[0] == b"1 FETCH (UID 1 BINARY.SIZE[1] %d BINARY[1] {%d}" % (len(text), len(text))
    assert bytes(got[1]) == text
    raw8 = b"From: a@x.test\r\nSubject: 8bit\r\n\r\ncaf\xc3\xa9 \xff\r\n"
    got = await _cmd(c, "APPEND", "INBOX", "~{%d}" % len(raw8), literal=raw8)
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", got[-1]).group(1))  # type: ignore[union-attr]
    got = (await c.uid("fetch", str(uid), "(BINARY.PEEK[])")).lines
    assert bytes(got[1]) == raw8
    await c.logout()


async def test_multiappend_catenate(imap: Imap) -> None:
    c = await _connect(imap)
    sel = await c.select("INBOX")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(sel.lines)).group(1))  # type: ignore[union-attr]
    one, two = corpus(0), corpus(2)
    got = await _cmd(c, "APPEND", "INBOX", "(\\Seen)", "{%d}" % len(one),
                     literal=one + b" {%d+}\r\n" % len(two) + two)
    assert got[-1].startswith(b"[APPENDUID %d 1:2]" % validity)
    body = b"Suite.\r\n"
    url = f'"/INBOX;UIDVALIDITY={validity}/;UID=2/;SECTION=HEADER"'
    got = await _cmd(c, "APPEND", "Archive", "CATENATE", "(URL", url, "TEXT",
                     "{%d}" % len(body), literal=body + b")")
    assert got[-1].startswith(b"[APPENDUID ")
    await c.select("Archive")
    got = (await c.fetch("1", "(BODY.PEEK[])")).lines
    assert bytes(got[1]) == two.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body
    await c.select("INBOX")
    got = (await c.fetch("1:*", "(FLAGS)")).lines
    assert [b"\\Seen" in x for x in got[:-1]] == [True, False]  # flags: the first message's
    await c.logout()


async def test_utf8_accept(imap: Imap) -> None:
    c = await _connect(imap)
    assert (await c.enable("UTF8=ACCEPT")).lines[0] == b"ENABLED UTF8=ACCEPT"
    assert (await c.create('"Résultats"')).result == "OK"
    got = await _cmd(c, "LIST", '""', '"R*"', untagged="LIST")
    assert got[:2] == [b'(\\HasNoChildren) "/" {10}', "Résultats".encode()]
    msg = "From: Zoé <z@x.test>\r\nSubject: Échographie\r\n\r\nvoilà\r\n".encode()
    got = await _cmd(c, "APPEND", '"Résultats"', "UTF8", "(~{%d}" % len(msg),
                     literal=msg + b")")
    assert got[-1].startswith(b"[APPENDUID ")
    assert (await c.select('"Résultats"')).result == "OK"
    assert (await c.search('SUBJECT "échographie"', charset=None)).lines[0] == b"1"
    got = (await c.fetch("1", "(ENVELOPE)")).lines
    assert any("Échographie".encode() in bytes(x) for x in got)  # UTF-8, not an encoded word
    await c.logout()


def _compress(c: aioimaplib.IMAP4_SSL) -> None:
    """Deflate both ways under aioimaplib's protocol (RFC 4978 3), after COMPRESS's OK."""
    proto = c.protocol
    transport = proto.transport
    out, inp = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    received = proto.data_received

    class Deflating:
        def write(self, data: bytes) -> None:
            transport.write(out.compress(data) + out.flush(zlib.Z_SYNC_FLUSH))

        def __getattr__(self, name: str) -> Any:
            return getattr(transport, name)

    proto.transport = Deflating()
    proto.data_received = lambda data: received(inp.decompress(data))


async def test_compress_idle_move_uidplus(imap: Imap) -> None:
    """COMPRESS=DEFLATE, then IDLE told of another client's MOVE and UID EXPUNGE."""
    await _fill(imap)
    c = await _connect(imap)
    await _cmd(c, "COMPRESS", "DEFLATE")
    _compress(c)
    assert (await c.select("INBOX")).result == "OK"
    got = await _cmd(c, "THREAD", "REFERENCES", "UTF-8", "ALL", prefix="UID")
    assert got[0] == b"(1 2 4)((3)(5))"  # through the deflate layer
    other = await _connect(imap)
    await other.select("INBOX")
    idle = await c.idle_start(timeout=10)
    moved = await other.uid("move", "2", "Archive")
    assert moved.result == "OK" and b"COPYUID" in b" ".join(bytes(x) for x in moved.lines)
    push = await asyncio.wait_for(c.wait_server_push(), 5)
    assert b"2 EXPUNGE" in push, push
    await other.uid("store", "4", "+FLAGS.SILENT", "(\\Deleted)")
    got = await other.uid("expunge", "4")  # UIDPLUS
    assert got.result == "OK"
    push = await asyncio.wait_for(c.wait_server_push(), 5)
    while b"3 EXPUNGE" not in push:
        push += await asyncio.wait_for(c.wait_server_push(), 5)
    c.idle_done()
    assert (await asyncio.wait_for(idle, 5)).result == "OK"
    assert (await c.uid_search("ALL", charset=None)).lines[0] == b"1 3 5"
    await other.logout()
    await c.logout()


async def test_condstore_qresync(imap: Imap) -> None:
    """CONDSTORE's CHANGEDSINCE and UNCHANGEDSINCE; QRESYNC's VANISHED while selected and
    ``UID FETCH ... (CHANGEDSINCE m VANISHED)`` after another client's changes."""
    await _fill(imap)
    c = await _connect(imap)
    assert (await c.enable("QRESYNC")).lines[0] == b"ENABLED QRESYNC"
    sel = await c.select("INBOX")
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(sel.lines)).group(1))  # type: ignore[union-attr]
    other = await _connect(imap)
    await other.select("INBOX")
    await other.uid("store", "1", "+FLAGS", "(\\Flagged)")
    await other.uid("store", "2,5", "+FLAGS.SILENT", "(\\Deleted)")
    await other.uid("expunge", "2,5")
    got = await _cmd(c, "NOOP", untagged="VANISHED")
    assert got[0] == b"2,5"  # live, not EXPUNGE (RFC 7162 3.2.10)
    changed = f"(CHANGEDSINCE {modseq} VANISHED)"
    got = await _cmd(c, "FETCH", "1:*", "(FLAGS)", changed, prefix="UID", untagged="VANISHED")
    assert got[0] == b"(EARLIER) 2,5"
    got = await _cmd(c, "FETCH", "1:*", "(FLAGS)", changed, prefix="UID", untagged="FETCH")
    assert len(got) == 2 and got[0].startswith(b"1 FETCH (UID 1 ") and b"\\Flagged" in got[0]
    got = await _cmd(c, "STORE", "3", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Seen)",
                     prefix="UID", untagged="FETCH")
    assert got[-1].startswith(b"[MODIFIED") is False
    got = await _cmd(c, "STORE", "1", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Seen)",
                     prefix="UID", untagged="FETCH")
    assert got[-1].startswith(b"[MODIFIED 1]")  # the other client changed it first
    await other.logout()
    await c.logout()
