"""IMAP4rev2 (RFC 9051) next to IMAP4rev1 over TLS: a session is rev1 until ``ENABLE
IMAP4rev2``, then answers as RFC 9051 E.2 says (raw lines; every reply is also checked
against the formal syntax by the ``imap_grammar`` fixture)."""

from __future__ import annotations

import re

from .conftest import Imap, message, open_raw


async def _seed(imap: Imap, n: int) -> None:
    for i in range(1, n + 1):
        await imap.services.store.append(imap.account_id, "INBOX", message(i))


async def test_rev1_until_enabled(imap: Imap) -> None:
    await _seed(imap, 2)
    c = await open_raw(imap)
    caps = (await c.cmd("CAPABILITY"))[0].split()
    assert {b"IMAP4rev1", b"IMAP4rev2", b"STATUS=SIZE"} <= set(caps)
    res = await c.cmd("SELECT INBOX")
    assert b"* 2 RECENT\r\n" in res and any(b"[UNSEEN 1]" in line for line in res)
    assert (await c.cmd("SEARCH ALL"))[0] == b"* SEARCH 1 2\r\n"
    await c.close()


async def test_enable_imap4rev2(imap: Imap) -> None:
    await _seed(imap, 3)
    c = await open_raw(imap)
    assert (await c.cmd("ENABLE IMAP4rev2"))[0] == b"* ENABLED IMAP4rev2\r\n"
    res = await c.cmd("SELECT INBOX", tag="s1")
    assert b"* 3 EXISTS\r\n" in res and b'* LIST (\\HasNoChildren) "/" INBOX\r\n' in res
    assert not any(b"RECENT" in line or b"[UNSEEN" in line for line in res), res
    # SEARCH answers ESEARCH (RFC 9051 6.4.4), UID SEARCH with UID
    assert (await c.cmd("SEARCH ALL", tag="q1"))[0] == b'* ESEARCH (TAG "q1") ALL 1:3\r\n'
    assert (await c.cmd("UID SEARCH UNSEEN", tag="q2"))[0] == \
        b'* ESEARCH (TAG "q2") UID ALL 1:3\r\n'
    assert (await c.cmd("SEARCH DELETED", tag="q3"))[:2] == [b'* ESEARCH (TAG "q3")\r\n',
                                                              b"q3 OK SEARCH completed\r\n"]
    # no \Recent in FETCH, none for new mail, and no RECENT response
    res = await c.cmd("FETCH 1:3 (FLAGS RFC822.SIZE)")
    assert not any(b"\\Recent" in line for line in res), res
    sizes = sum(int(m) for m in re.findall(rb"RFC822\.SIZE (\d+)", b"".join(res)))
    await imap.services.store.append(imap.account_id, "INBOX", message(4))
    res = await c.cmd("NOOP")
    assert res[0] == b"* 4 EXISTS\r\n" and not any(b"RECENT" in line for line in res), res
    res = await c.cmd("FETCH 4 (FLAGS RFC822.SIZE)")
    assert b"\\Recent" not in res[0]
    sizes += int(re.findall(rb"RFC822\.SIZE (\d+)", res[0])[0])
    # STATUS SIZE and DELETED (RFC 9051 6.3.11)
    await c.cmd("STORE 2,3 +FLAGS.SILENT (\\Deleted)")
    assert (await c.cmd("STATUS INBOX (MESSAGES SIZE DELETED)"))[0] == \
        b"* STATUS INBOX (MESSAGES 4 SIZE %d DELETED 2)\r\n" % sizes
    # $ (SEARCHRES) and UID MOVE
    assert (await c.cmd("UID SEARCH RETURN (SAVE) DELETED"))[-1].split()[1] == b"OK"
    res = await c.cmd("UID MOVE $ Trash")
    assert any(b"[COPYUID" in line for line in res) and res[-1].split()[1] == b"OK", res
    assert (await c.cmd("STATUS Trash (MESSAGES DELETED)"))[0] == \
        b"* STATUS Trash (MESSAGES 2 DELETED 2)\r\n"
    # BINARY is part of rev2
    assert b"BINARY[1]" in (await c.cmd("FETCH 1 (BINARY.PEEK[1])"))[0]
    # a new selection closes the previous one with [CLOSED]
    res = await c.cmd("EXAMINE Trash")
    assert res[0].startswith(b"* OK [CLOSED]"), res
    assert b'* LIST (\\Trash \\HasNoChildren) "/" Trash\r\n' in res, res
    await c.close()


async def test_rev2_mailbox_names_are_utf8(imap: Imap) -> None:
    c = await open_raw(imap)
    await c.cmd("ENABLE IMAP4rev2")
    assert (await c.cmd('CREATE "Dossiers/Été"'.encode()))[-1].split()[1] == b"OK"
    name = "Dossiers/Été".encode()
    res = await c.cmd('LIST "" "Dossiers/*"')  # a literal holds the UTF-8 name
    assert res[0] == b'* LIST (\\HasNoChildren) "/" {%d}\r\n%s\r\n' % (len(name), name), res
    assert (await c.cmd('STATUS "Dossiers/Été" (MESSAGES SIZE)'.encode()))[0] == \
        b"* STATUS {%d}\r\n%s (MESSAGES 0 SIZE 0)\r\n" % (len(name), name)
    # RFC 9051 7.1: HASCHILDREN when a mailbox with children cannot be deleted
    assert b"[HASCHILDREN]" in (await c.cmd("DELETE Dossiers"))[-1]
    await c.close()
    rev1 = await open_raw(imap)  # a rev1 session still sees modified UTF-7
    assert (await rev1.cmd('LIST "" "Dossiers/*"'))[0].endswith(b' Dossiers/&AMk-t&AOk-\r\n')
    await rev1.close()


async def test_select_names_the_first_unseen_message(imap: Imap) -> None:
    """``[UNSEEN n]`` is the sequence number of the first message without \\Seen (read with
    the UIDs on PostgreSQL); none when every message is seen. A keyword that reads like the
    flag is not the flag."""
    await _seed(imap, 4)
    c = await open_raw(imap)
    try:
        await c.cmd("SELECT INBOX")
        await c.cmd("STORE 1:2 +FLAGS.SILENT (\\Seen)")
        await c.cmd("STORE 3 +FLAGS.SILENT (Seen $Seen NotSeen)")
        await c.cmd("STORE 4 +FLAGS.SILENT (\\Seen)")
        res = await c.cmd("SELECT INBOX")
        assert [ln for ln in res if b"[UNSEEN" in ln] == [b"* OK [UNSEEN 3] first unseen\r\n"]
        await c.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
        res = await c.cmd("SELECT INBOX")
        assert not any(b"[UNSEEN" in ln for ln in res), res
    finally:
        await c.close()
