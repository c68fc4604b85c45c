"""UTF8=ACCEPT (RFC 6855) over implicit TLS: UTF-8 mailbox names both ways once enabled,
mUTF-7 for other sessions, no SEARCH CHARSET, APPEND's UTF8 (literal8) data item."""

from __future__ import annotations

from .conftest import Imap, open_raw


async def test_utf8_accept(imap: Imap) -> None:
    c = await open_raw(imap)
    assert b" UTF8=ACCEPT" in (await c.cmd("CAPABILITY"))[0]
    assert (await c.cmd("ENABLE UTF8=ACCEPT"))[0] == b"* ENABLED UTF8=ACCEPT\r\n"
    assert (await c.cmd('CREATE "Résultats/R&D"'.encode()))[-1].split()[1] == b"OK"
    res = await c.cmd('LIST "" "R*"')
    assert res[:2] == [b'* LIST (\\HasChildren) "/" {10}\r\nR\xc3\xa9sultats\r\n',
                       b'* LIST (\\HasNoChildren) "/" {14}\r\nR\xc3\xa9sultats/R&D\r\n']
    res = await c.cmd('STATUS "Résultats/R&D" (MESSAGES)'.encode())
    assert res[0] == b"* STATUS {14}\r\nR\xc3\xa9sultats/R&D (MESSAGES 0)\r\n"
    msg = "Subject: Résultat\r\nFrom: Zoé <z@x.example>\r\n\r\nvoilà\r\n".encode()
    await c.write(b'a1 APPEND "R\xc3\xa9sultats/R&D" UTF8 (~{%d+}\r\n' % len(msg) + msg + b")\r\n")
    assert (await c.until("a1"))[-1].startswith(b"a1 OK [APPENDUID ")
    await c.cmd('SELECT "Résultats/R&D"'.encode())
    assert (await c.cmd("SEARCH CHARSET UTF-8 ALL"))[-1].split()[1] == b"BAD"
    assert (await c.cmd('SEARCH SUBJECT "résultat"'.encode()))[0] == b"* SEARCH 1\r\n"
    await c.close()
    other = await open_raw(imap)  # without ENABLE: modified UTF-7 (RFC 3501 5.1.3)
    res = await other.cmd('LIST "" "R*"')
    assert res[1] == b'* LIST (\\HasNoChildren) "/" R&AOk-sultats/R&-D\r\n'
    assert (await other.cmd("SELECT R&D"))[-1].split()[1] == b"NO"  # not mUTF-7
    await other.close()
