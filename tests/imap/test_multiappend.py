"""MULTIAPPEND (RFC 3502) over implicit TLS: several messages in one APPEND, all or none."""

from __future__ import annotations

from .conftest import Imap, message, open_raw


def _lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


async def test_multiappend_is_atomic(imap: Imap) -> None:
    c = await open_raw(imap)
    assert b" MULTIAPPEND" in (await c.cmd("CAPABILITY"))[0]
    m1, m2, m3 = message(1), message(2), message(3)
    await c.write(b"a1 APPEND Drafts (\\Seen) " + _lit(m1) + b' (\\Draft) "02-Mar-2026 10:00:00 '
                  b'+0100" ' + _lit(m2) + b" " + _lit(m3) + b"\r\n")
    res = await c.until("a1")
    assert res[-1].startswith(b"a1 OK [APPENDUID ") and res[-1].split()[4] == b"1:3]", res
    await c.write(b"a2 APPEND Drafts " + _lit(message(4)) + b" " + _lit(b"") + b"\r\n")
    assert (await c.until("a2"))[-1].startswith(b"a2 NO")  # the empty one refuses both
    await c.write(b"a3 APPEND Nowhere " + _lit(m1) + b" " + _lit(m2) + b"\r\n")
    assert (await c.until("a3"))[-1].startswith(b"a3 NO [TRYCREATE]")
    await c.cmd("EXAMINE Drafts")
    res = await c.cmd("FETCH 1:* (FLAGS INTERNALDATE)")
    assert len(res) == 4  # three messages, nothing from a2
    assert b"FLAGS (\\Seen \\Recent)" in res[0] and b"FLAGS (\\Draft \\Recent)" in res[1]
    assert b'" 2-Mar-2026 09:00:00 +0000"' in res[1]
    await c.close()


async def test_multiappend_to_sent_keeps_one_copy(imap: Imap) -> None:
    c = await open_raw(imap)
    m1 = message(1, msgid="<dup@x>")
    await c.write(b"a1 APPEND Sent " + _lit(m1) + b"\r\n")
    first = (await c.until("a1"))[-1]
    await c.write(b"a2 APPEND Sent " + _lit(message(2)) + b" " + _lit(m1) + b"\r\n")
    res = (await c.until("a2"))[-1]
    uid = first.split()[4].rstrip(b"]")
    assert res.split()[4] == b"2," + uid + b"]", res  # the new one, then the existing copy
    await c.close()
