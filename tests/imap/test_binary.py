"""BINARY (RFC 3516) over implicit TLS: decoded parts, literal8, BINARY.SIZE, partial fetches,
UNKNOWN-CTE, and APPEND with literal8 (every reply grammar-checked by the fixture)."""

from __future__ import annotations

import base64

from .conftest import Imap, open_raw

PAYLOAD = bytes(range(256)) * 3  # NUL and 8-bit octets
MIME = (b"From: a@x.example\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"R=C3=A9sultat =\r\nnormal\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") +
        b"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
        b"begin 644 x\r\nend\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nplain 7bit\r\n--B--\r\n")


async def test_binary_fetch(imap: Imap) -> None:
    await imap.services.store.append(imap.account_id, "INBOX", MIME)
    c = await open_raw(imap)
    assert b" BINARY" in (await c.cmd("CAPABILITY"))[0]
    await c.cmd("SELECT INBOX")
    res = await c.cmd("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[2])")
    assert res[0] == (b"* 1 FETCH (BINARY[1] {16}\r\nR\xc3\xa9sultat normal BINARY.SIZE[1] 16 "
                      b"BINARY.SIZE[2] 768)\r\n")
    res = await c.cmd("FETCH 1 (BINARY.PEEK[2])")
    assert res[0] == b"* 1 FETCH (BINARY[2] ~{768}\r\n" + PAYLOAD + b")\r\n"
    res = await c.cmd("FETCH 1 (BINARY.PEEK[2]<256.4> BINARY.PEEK[4] BINARY.PEEK[9])")
    assert res[0] == (b"* 1 FETCH (BINARY[2]<256> ~{4}\r\n\x00\x01\x02\x03 "
                      b"BINARY[4] {10}\r\nplain 7bit BINARY[9] NIL)\r\n")
    assert (await c.cmd("FETCH 1 FLAGS"))[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    res = await c.cmd("FETCH 1 (BINARY[1])")  # not PEEK: sets \Seen
    assert res[0] == (b"* 1 FETCH (BINARY[1] {16}\r\nR\xc3\xa9sultat normal "
                      b"FLAGS (\\Seen \\Recent))\r\n")
    res = await c.cmd("FETCH 1 (BINARY[3])")
    assert b" NO [UNKNOWN-CTE] " in res[-1]
    await c.close()


async def test_append_literal8(imap: Imap) -> None:
    c = await open_raw(imap)
    msg = b"Subject: 8bit\r\n\r\ncaf\xc3\xa9\r\n"
    await c.write(b"a1 APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert (await c.until("a1"))[-1].startswith(b"a1 OK [APPENDUID ")
    nul = b"Subject: nul\r\n\r\na\x00b\r\n"
    await c.write(b"a2 APPEND INBOX ~{%d+}\r\n" % len(nul) + nul + b"\r\n")
    assert (await c.until("a2"))[-1].startswith(b"a2 NO [UNKNOWN-CTE]")
    await c.cmd("EXAMINE INBOX")
    res = await c.cmd("FETCH 1:* (BINARY[1])")
    assert res[0] == b"* 1 FETCH (BINARY[1] {7}\r\ncaf\xc3\xa9\r\n)\r\n" and len(res) == 2
    await c.close()
