"""CATENATE (RFC 4469) over the real server: a message assembled from literal text and parts
of stored messages (the forward-without-download case), refused URLs answered BADURL."""

from __future__ import annotations

import re

from .conftest import Imap, Raw, open_raw

ORIGINAL = (b"From: a@b.test\r\nSubject: original\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
            b"Content-Type: text/plain\r\n\r\nbonjour\r\n--B\r\n"
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"JVBERi0=\r\n--B--\r\n")


async def _append(c: Raw, text: bytes) -> list[bytes]:
    await c.write(b"ap " + text + b"\r\n")
    return await c.until("ap")


async def test_catenate_text_and_urls(imap: Imap) -> None:
    c = await open_raw(imap)
    assert b"CATENATE" in (await c.cmd("CAPABILITY"))[0]
    res = await _append(c, b"APPEND INBOX {%d+}\r\n%s" % (len(ORIGINAL), ORIGINAL))
    validity = int(re.search(rb"APPENDUID (\d+) 1", res[-1]).group(1))  # type: ignore[union-attr]
    head = (b"From: me@b.test\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n")
    mid, tail = b"\r\n--C\r\n", b"\r\n--C--\r\n"
    cmd = (b"APPEND Drafts CATENATE (TEXT {%d+}\r\n%s URL \"/INBOX;UIDVALIDITY=%d/;UID=1/;"
           b"SECTION=2.MIME\" URL \"/INBOX/;UID=1/;SECTION=2\" TEXT {%d+}\r\n%s"
           b" URL \"imap://dr@host/INBOX/;UID=1/;SECTION=1\" TEXT {%d+}\r\n%s)"
           % (len(head), head, validity, len(mid), mid, len(tail), tail))
    res = await _append(c, cmd)
    assert res[-1].split()[1] == b"OK", res
    await c.cmd("SELECT Drafts")
    body = b"".join(await c.cmd("FETCH 1 BODY.PEEK[]"))
    assert (head + b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"JVBERi0=" + mid + b"bonjour" + tail) in body
    res = await _append(c, b'APPEND Drafts CATENATE (URL "/INBOX/;UID=99")')
    assert res[-1].startswith(b"ap NO [BADURL /INBOX/;UID=99]"), res
    res = await _append(c, b'APPEND Drafts CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")')
    assert res[-1].split()[1:3] == [b"NO", b"[BADURL"], res
    res = await _append(c, b'APPEND Drafts CATENATE (URL "http://x/")')
    assert res[-1].split()[1] == b"NO", res
    await c.close()
