"""Several sessions on one mailbox, IDLE (aioimaplib), SMTP delivery pushed to IDLE, imapclient."""

from __future__ import annotations

import asyncio
import time

import aioimaplib
import aiosmtplib
import imapclient
from imapclient.imapclient import SENT

from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, PASSWORD, RPPS, add_pro

from .conftest import Imap, Raw, message, open_raw


async def _select(raw: Raw, box: str = "INBOX") -> list[bytes]:
    res = await raw.cmd(f"SELECT {box}")
    assert res[-1].split()[1] == b"OK", res
    return res


async def test_sessions_see_each_others_changes(imap: Imap) -> None:
    st = imap.services.store
    for i in range(1, 4):
        await st.append(imap.account_id, "INBOX", message(i))
    a, b = await open_raw(imap), await open_raw(imap)
    await _select(a)
    await _select(b)
    # A flags, B's NOOP reports the new flags.
    await a.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    res = await b.cmd("NOOP")
    assert any(line.startswith(b"* 1 FETCH (UID 1 FLAGS (\\Flagged))") for line in res), res
    # A expunges message 2; B is told with EXPUNGE, then sees the right numbering.
    await a.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    await a.cmd("EXPUNGE")
    res = await b.cmd("NOOP")
    assert b"* 2 EXPUNGE\r\n" in res, res
    # New mail: EXISTS.
    await st.append(imap.account_id, "INBOX", message(9))
    res = await b.cmd("NOOP")
    assert b"* 3 EXISTS\r\n" in res, res
    res = await b.cmd("FETCH 1:* (UID)")
    assert [line.split()[4].rstrip(b")") for line in res[:-1]] == [b"1", b"3", b"4"]
    # EXPUNGE is not sent during a plain FETCH (RFC 3501 7.4.1) but during UID FETCH it may be.
    await a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await a.cmd("EXPUNGE")
    res = await b.cmd("FETCH 1 (FLAGS)")
    assert not any(b"EXPUNGE" in line for line in res), res
    res = await b.cmd("UID FETCH 1:* (FLAGS)")
    assert b"* 1 EXPUNGE\r\n" in res, res
    for c in (a, b):
        await c.close()


async def test_idle_with_aioimaplib_and_other_session(imap: Imap) -> None:
    client = aioimaplib.IMAP4_SSL(host=imap.host, port=imap.tls_port, ssl_context=imap.tls)
    await client.wait_hello_from_server()
    assert (await client.login(imap.user, imap.password)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    idle = await client.idle_start(timeout=10)
    t0 = time.monotonic()
    await imap.services.store.append(imap.account_id, "INBOX", message(1))
    push = await asyncio.wait_for(client.wait_server_push(), 2)
    assert time.monotonic() - t0 < 1.0
    assert any(b"1 EXISTS" in (x if isinstance(x, bytes) else x.encode()) for x in push), push
    client.idle_done()
    assert (await asyncio.wait_for(idle, 5)).result == "OK"
    res = await client.uid("fetch", "1", "(FLAGS)")
    assert res.result == "OK"
    await client.logout()


async def test_idle_is_told_of_smtp_delivery_within_a_second(imap: Imap, runtime: Runtime) -> None:
    await add_pro(imap.services, "dr.durand", RPPS[1])
    raw = await open_raw(imap)
    await _select(raw)
    await raw.write(b"i1 IDLE\r\n")
    assert (await raw.line()).startswith(b"+ ")
    host, port = runtime.ports["submission"]
    t0 = time.monotonic()
    await aiosmtplib.send(message(1), sender=f"dr.durand@{DOMAIN}",
                          recipients=[imap.user], hostname=host, port=port,
                          username=f"dr.durand@{DOMAIN}", password=PASSWORD, start_tls=True,
                          tls_context=imap.tls)
    line = await raw.line(timeout=3)
    elapsed = time.monotonic() - t0
    assert line == b"* 1 EXISTS\r\n"
    assert elapsed < 1.5  # includes the SMTP exchange itself; the push follows the commit
    await raw.write(b"DONE\r\n")
    res = await raw.until("i1")
    assert res[-1].startswith(b"i1 OK")
    await raw.close()


async def test_imapclient(imap: Imap) -> None:
    st = imap.services.store
    for i in range(1, 4):
        await st.append(imap.account_id, "INBOX", message(i))

    def go() -> dict[str, object]:
        c = imapclient.IMAPClient(imap.host, port=imap.tls_port, ssl=True,
                                  ssl_context=imap.tls)
        c.login(imap.user, imap.password)
        r: dict[str, object] = {"caps": c.capabilities(), "folders": c.list_folders()}
        r["select"] = c.select_folder("INBOX")
        r["env"] = c.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "FLAGS"])
        r["flags"] = c.add_flags([1], [imapclient.FLAGGED])
        r["search"] = c.search(["FLAGGED"])
        r["sent"] = c.find_special_folder(SENT)
        r["move"] = c.move([3], "Archive")
        r["idle_caps"] = c.has_capability("IDLE")
        r["ns"] = c.namespace()
        r["id"] = c.id_({"name": "test"})
        c.logout()
        return r

    r = await asyncio.to_thread(go)
    assert b"MOVE" in r["caps"] and r["idle_caps"]
    assert r["select"][b"EXISTS"] == 3
    env = r["env"][1][b"ENVELOPE"]
    assert env.subject == b"Compte rendu 1" and env.from_[0].mailbox == b"dr.durand"
    assert r["env"][2][b"BODYSTRUCTURE"][0] == b"text"
    assert imapclient.FLAGGED in r["flags"][1]
    assert r["search"] == [1]
    assert r["sent"] == "Sent"
    assert b"mssante" in r["id"][0]


async def test_smtp_sent_copy_is_not_duplicated_by_client_append(imap: Imap,
                                                                 runtime: Runtime) -> None:
    """Thunderbird submits over SMTP, then APPENDs the same message to Sent: one copy only."""
    await add_pro(imap.services, "dr.durand", RPPS[1])
    host, port = runtime.ports["submission"]
    raw_msg = message(1, msgid=f"<once@{DOMAIN}>").replace(
        f"From: Dr Durand <dr.durand@{DOMAIN}>".encode(), f"From: <{imap.user}>".encode()).replace(
        f"To: {imap.user}".encode(), f"To: dr.durand@{DOMAIN}".encode())
    await aiosmtplib.send(raw_msg, sender=imap.user, recipients=[f"dr.durand@{DOMAIN}"],
                          hostname=host, port=port, username=imap.user, password=imap.password,
                          start_tls=True, tls_context=imap.tls)
    c = await open_raw(imap)
    await c.write(b"a APPEND Sent (\\Seen) {%d+}\r\n" % len(raw_msg) + raw_msg + b"\r\n")
    res = await c.until("a")
    assert res[-1].startswith(b"a OK [APPENDUID ") and b" 1] " in res[-1], res
    res = await c.cmd("STATUS Sent (MESSAGES)")
    assert res[0] == b"* STATUS Sent (MESSAGES 1)\r\n"
    await c.close()


async def test_nothing_is_stored_in_clear(imap: Imap) -> None:
    from sqlalchemy import select

    from mailserver.store.models import Message

    marker = "Diagnostic-confidentiel-XYZ"
    c = await open_raw(imap)
    raw_msg = message(1, subject=marker, body=marker + "\r\n")
    await c.write(b"a APPEND INBOX {%d+}\r\n" % len(raw_msg) + raw_msg + b"\r\n")
    assert (await c.until("a"))[-1].startswith(b"a OK")
    await c.cmd("SELECT INBOX")
    res = await c.cmd("FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER])")
    assert marker.encode() in res[0]
    await c.close()
    async with imap.services.db.session() as s:
        row = (await s.execute(select(Message))).scalars().one()
    assert row.meta_enc is not None  # the summary cache was written ...
    for blob in (row.content_enc, row.meta_enc, row.subject_enc, row.from_enc):
        assert blob is None or marker.encode() not in blob  # ... sealed, like the message
