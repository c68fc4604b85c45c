"""LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819) over implicit TLS, raw lines."""

from __future__ import annotations

from .conftest import Imap, message, open_raw


async def test_list_extended_and_status(imap: Imap) -> None:
    store = imap.services.store
    for n in (1, 2):
        await store.append(imap.account_id, "INBOX", message(n))
    c = await open_raw(imap)
    caps = (await c.cmd("CAPABILITY"))[0]
    assert b" LIST-EXTENDED" in caps and b" LIST-STATUS" in caps
    for name in ("Projets", "Projets/2026", "Projets/2027"):
        assert (await c.cmd(f"CREATE {name}"))[-1].split()[1] == b"OK"
    await c.cmd("SUBSCRIBE Projets/2026")
    for cmd in ("CREATE Ancien", "SUBSCRIBE Ancien", "DELETE Ancien"):  # subscribed, gone
        assert (await c.cmd(cmd))[-1].split()[1] == b"OK"
    res = await c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)')
    assert b'* LIST (\\HasChildren) "/" Projets ("CHILDINFO" ("SUBSCRIBED"))\r\n' in res
    assert b'* LIST (\\NonExistent \\Subscribed) "/" Ancien\r\n' in res
    res = await c.cmd('LIST "" (INBOX Projets/%) RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN))')
    assert res[:6] == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" INBOX\r\n',
        b"* STATUS INBOX (MESSAGES 2 UNSEEN 2)\r\n",
        b'* LIST (\\HasNoChildren \\Subscribed) "/" Projets/2026\r\n',
        b'* STATUS Projets/2026 (MESSAGES 0 UNSEEN 0)\r\n',
        b'* LIST (\\HasNoChildren) "/" Projets/2027\r\n',
        b'* STATUS Projets/2027 (MESSAGES 0 UNSEEN 0)\r\n']
    res = await c.cmd('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)')
    assert all(b"\\Sent" in line or b"\\Trash" in line or b"\\Drafts" in line
               or b"\\Junk" in line or b"\\Archive" in line for line in res[:-1])
    res = await c.cmd('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))')
    assert not any(b"STATUS Ancien" in line for line in res)  # \NonExistent: no STATUS
    assert (await c.cmd('LIST (RECURSIVEMATCH) "" "*"'))[-1].split()[1] == b"BAD"
    assert (await c.cmd('LIST (FOO) "" "*"'))[-1].split()[1] == b"BAD"
    await c.close()
