"""Mailbox state over the real server: \\Recent, subscriptions, keywords, names, MOVE, and reads
on a full disk (issue 9: Dovecot compliance scripts and a comparison with Dovecot 2.3)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.imap.server import start_imap
from mailserver.tls import server_context

from .conftest import Imap, Raw, message, open_raw


async def _append(c: Raw, mailbox: str, data: bytes) -> list[bytes]:
    await c.write(b"ap APPEND %s {%d+}\r\n%s\r\n" % (mailbox.encode(), len(data), data))
    return await c.until("ap")


def _recent(lines: list[bytes]) -> int:
    found = [int(m.group(1)) for x in lines if (m := re.match(rb"\* (\d+) RECENT", x))]
    assert found, lines
    return found[-1]


# -- 12: \Recent ------------------------------------------------------------------------------
async def test_appended_messages_are_recent_to_the_first_select(imap: Imap) -> None:
    """RFC 3501 6.3.11: APPENDed messages get \\Recent; the first read-write SELECT claims it."""
    c = await open_raw(imap)
    for n in (1, 2):
        assert (await _append(c, "INBOX", message(n)))[-1].startswith(b"ap OK")
    assert b"RECENT 2" in (await c.cmd("STATUS INBOX (RECENT)"))[0]
    assert _recent(await c.cmd("EXAMINE INBOX")) == 2  # seen as \Recent, not claimed
    assert _recent(await c.cmd("SELECT INBOX")) == 2
    assert (await c.cmd("SEARCH RECENT"))[0] == b"* SEARCH 1 2\r\n"
    assert (await c.cmd("SEARCH NEW"))[0] == b"* SEARCH 1 2\r\n"
    assert b"\\Recent" in (await c.cmd("FETCH 1 FLAGS"))[0]
    other = await open_raw(imap)
    assert b"RECENT 0" in (await other.cmd("STATUS INBOX (RECENT)"))[0]
    assert _recent(await other.cmd("SELECT INBOX")) == 0
    assert (await other.cmd("SEARCH RECENT"))[0] == b"* SEARCH\r\n"
    await other.close()
    await c.close()


@pytest.fixture
async def second_process(config: Config, imap: Imap) -> AsyncIterator[Imap]:
    """A second server process on the same database: its own store and IMAP listener."""
    services = await open_services(config, fast_passwords=True)
    ctx = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    server = await start_imap(services.imap_backend(), "127.0.0.1", 0, ctx, implicit_tls=True)
    try:
        yield Imap(imap.host, imap.port, server.sockets[0].getsockname()[1], imap.user,
                   imap.password, imap.account_id, imap.tls, services)
    finally:
        server.close()
        await services.close()


async def test_recent_is_claimed_once_across_processes(imap: Imap, second_process: Imap
                                                       ) -> None:
    """Two processes serving one mailbox: each message is \\Recent in exactly one session."""
    for n in (1, 2):
        await imap.services.store.append(imap.account_id, "INBOX", message(n))
    a, b = await open_raw(imap), await open_raw(second_process)
    got = sorted([_recent(await a.cmd("SELECT INBOX")), _recent(await b.cmd("SELECT INBOX"))])
    assert got == [0, 2]
    # New mail while both are selected: one of them gets it.
    await second_process.services.store.append(imap.account_id, "INBOX", message(3))
    news = [await a.cmd("NOOP"), await b.cmd("NOOP")]
    assert all(b"* 3 EXISTS\r\n" in lines for lines in news)
    recent = [(await c.cmd("SEARCH RECENT"))[0] for c in (a, b)]
    assert sum(b" 3" in line for line in recent) == 1, recent
    await a.close()
    await b.close()


# -- 13: subscriptions ------------------------------------------------------------------------
async def test_subscriptions_are_names(imap: Imap) -> None:
    """RFC 3501 6.3.3, 6.3.6, 6.3.9: CREATE does not subscribe, DELETE keeps the subscription,
    LSUB "%" shows an unsubscribed superior of a subscribed name as \\Noselect."""
    c = await open_raw(imap)
    assert (await c.cmd("CREATE q2/a/b"))[-1].split()[1] == b"OK"
    assert [x for x in await c.cmd('LSUB "" q2*') if x.startswith(b"* ")] == []
    defaults = await c.cmd('LSUB "" %')
    for name in (b'"/" INBOX', b'"/" Sent', b'"/" Drafts', b'"/" Trash'):
        assert any(x.endswith(name + b"\r\n") for x in defaults), defaults
    assert (await c.cmd("SUBSCRIBE q2/a/b"))[-1].split()[1] == b"OK"
    assert (await c.cmd('LSUB "" q2/%'))[:-1] == [b'* LSUB (\\Noselect \\HasChildren) "/" q2/a\r\n']
    assert (await c.cmd('LSUB "" %'))[:-1][-1] == b'* LSUB (\\Noselect \\HasChildren) "/" q2\r\n'
    assert [x for x in await c.cmd('LSUB "" *') if b"q2" in x] == [
        b'* LSUB (\\HasNoChildren) "/" q2/a/b\r\n']
    assert (await c.cmd("DELETE q2/a/b"))[-1].split()[1] == b"OK"
    assert [x for x in await c.cmd('LSUB "" *') if b"q2" in x] == [b'* LSUB () "/" q2/a/b\r\n']
    # Re-created, the folder is subscribed again (the subscription is on the name).
    assert (await c.cmd("CREATE q2/a/b"))[-1].split()[1] == b"OK"
    assert [x for x in await c.cmd('LSUB "" *') if b"q2" in x] == [
        b'* LSUB (\\HasNoChildren) "/" q2/a/b\r\n']
    assert (await c.cmd("DELETE q2/a/b"))[-1].split()[1] == b"OK"
    assert (await c.cmd("UNSUBSCRIBE q2/a/b"))[-1].split()[1] == b"OK"
    assert [x for x in await c.cmd('LSUB "" *') if b"q2" in x] == []
    assert (await c.cmd("UNSUBSCRIBE q2/a/b"))[-1].split()[1] == b"NO"
    await c.close()


# -- 14: keywords -----------------------------------------------------------------------------
async def test_new_keyword_is_announced_before_fetch(imap: Imap) -> None:
    """RFC 3501 7.2.6: a new keyword comes in FLAGS (PERMANENTFLAGS keeps \\*) before a FETCH
    shows it, here and in other sessions; SELECT lists the keywords in use."""
    await imap.services.store.append(imap.account_id, "INBOX", message(1))
    a, b = await open_raw(imap), await open_raw(imap)
    await a.cmd("SELECT INBOX")
    await b.cmd("SELECT INBOX")
    res = await a.cmd("STORE 1 +FLAGS ($hello)")
    assert res[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello)\r\n", res
    assert res[1].startswith(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                             b"\\Draft $hello \\*)]"), res
    assert res[2].startswith(b"* 1 FETCH (FLAGS ($hello")
    assert sum(x.startswith(b"* FLAGS") for x in await a.cmd("NOOP")) == 0  # told once
    res = await b.cmd("NOOP")
    flags_at = next(i for i, x in enumerate(res) if x.startswith(b"* FLAGS"))
    fetch_at = next(i for i, x in enumerate(res) if b"FETCH" in x)
    assert b"$hello" in res[flags_at] and flags_at < fetch_at, res
    assert b"$hello \\*)]" in res[flags_at + 1]
    c = await open_raw(imap)
    res = await c.cmd("SELECT INBOX")
    assert res[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello)\r\n"
    assert b"$hello \\*)]" in res[1]
    for x in (a, b, c):
        await x.close()


async def test_keywords_of_an_old_folder_are_derived(imap: Imap) -> None:
    """A folder from before ``folders.keywords`` existed (NULL) lists its messages' keywords."""
    await imap.services.store.append(imap.account_id, "INBOX", message(1), flags=["$Label1"])
    async with imap.services.db.engine.begin() as conn:
        await conn.execute(text("UPDATE folders SET keywords = NULL"))
    c = await open_raw(imap)
    assert b"$Label1)" in (await c.cmd("SELECT INBOX"))[0]
    res = await c.cmd("STORE 1 +FLAGS ($Label2)")
    assert res[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 $Label2)\r\n"
    await c.close()


# -- 16: mailbox names, MOVE ------------------------------------------------------------------
async def test_invalid_mutf7_name_is_no_not_bad(imap: Imap) -> None:
    """RFC 3501 5.1.3: NO (a BAD makes clients drop the connection); the session goes on."""
    c = await open_raw(imap)
    for cmd in ("CREATE &Jjo", "SELECT &Jjo", 'RENAME Drafts "a&AGE-b"', "STATUS & (MESSAGES)"):
        res = await c.cmd(cmd)
        assert res[-1].split()[1] == b"NO", (cmd, res)
    assert (await c.cmd("SELECT INBOX"))[-1].split()[1] == b"OK"
    await c.close()


async def test_move_into_the_selected_mailbox_gives_new_uids(imap: Imap) -> None:
    """RFC 6851: MOVE to the same mailbox is a move: new UIDs, COPYUID, EXPUNGE then EXISTS."""
    for n in (1, 2):
        await imap.services.store.append(imap.account_id, "INBOX", message(n))
    c = await open_raw(imap)
    res = await c.cmd("SELECT INBOX")
    validity = re.search(rb"UIDVALIDITY (\d+)", b"".join(res)).group(1)  # type: ignore[union-attr]
    res = await c.cmd("UID MOVE 1 INBOX")
    assert res[0] == b"* OK [COPYUID %s 1 3] moved\r\n" % validity, res
    assert res[1:] == [b"* 1 EXPUNGE\r\n", b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n",
                       res[-1]] and res[-1].split()[1] == b"OK", res
    assert (await c.cmd("UID SEARCH ALL"))[0] == b"* SEARCH 2 3\r\n"
    assert b"MESSAGES 2" in (await c.cmd("STATUS INBOX (MESSAGES)"))[0]
    await c.close()


# -- 21: reads on a full disk -----------------------------------------------------------------
def _big_header_message(n: int) -> bytes:
    # The cached summary holds the header block: 20 kB needs new database pages.
    filler = "".join(f"X-Trace-{i}: {'x' * 60}\r\n" for i in range(300))
    return message(n).replace(b"\r\n\r\n", b"\r\n" + filler.encode() + b"\r\n", 1)


async def _fill_the_disk(services: Services) -> None:
    """Cap the SQLite database at its current size: every write needing a new page fails
    with SQLITE_FULL ("database or disk is full"), the error a full filesystem gives."""
    async with services.db.session() as s:
        pages = (await s.execute(text("PRAGMA page_count"))).scalar_one()
    await services.db.engine.dispose()

    def cap(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA max_page_count = {int(pages)}")
        cur.close()

    event.listen(services.db.engine.sync_engine, "connect", cap)


async def test_fetch_envelope_and_header_fields_on_a_full_disk(imap: Imap) -> None:
    """A read never depends on the summary cache write (it is tried, best-effort)."""
    if not imap.services.db.is_sqlite:
        pytest.skip("the full disk is simulated with SQLite's max_page_count")
    for n in (1, 2, 3):
        await imap.services.store.append(imap.account_id, "INBOX", _big_header_message(n))
    c = await open_raw(imap)
    await c.cmd("EXAMINE INBOX")
    await _fill_the_disk(imap.services)
    with pytest.raises(Exception, match="full"):  # the store really cannot write
        async with imap.services.db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE filler (x BLOB)"))
            await conn.execute(text("INSERT INTO filler VALUES (zeroblob(100000))"))
    res = await c.cmd("FETCH 1:3 (ENVELOPE)")
    assert res[-1].split()[1] == b"OK", res
    assert sum(b'"Compte rendu' in x for x in res) == 3
    res = await c.cmd("FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert res[-1].split()[1] == b"OK", res
    assert sum(b"Subject: Compte rendu" in x for x in res) == 3
    await c.close()


async def test_a_message_appended_to_the_selected_folder_is_recent_to_the_appender(
        imap: Imap) -> None:
    """RFC 3501 2.3.2 / 6.3.11: the appending session is the first told of the message (its
    EXISTS comes with the APPEND); the claim is taken with the message, so no other session,
    not even one SELECTing afterwards, sees it as \\Recent, and an EXAMINE or a session that
    appended elsewhere claims nothing."""
    await imap.services.store.append(imap.account_id, "INBOX", message(1))
    c, other = await open_raw(imap), await open_raw(imap)
    try:
        assert _recent(await c.cmd("SELECT INBOX")) == 1
        assert _recent(await other.cmd("EXAMINE INBOX")) == 0
        lines = await _append(c, "INBOX", message(2))
        assert b"* 2 EXISTS\r\n" in lines and lines[-1].startswith(b"ap OK")
        assert _recent(lines) == 2
        assert (await c.cmd("SEARCH RECENT"))[0] == b"* SEARCH 1 2\r\n"
        await _append(other, "INBOX", message(3))  # read-only session: claims nothing
        assert b"* 3 EXISTS\r\n" in await c.cmd("NOOP")  # c learns of it first: claims it
        assert (await c.cmd("SEARCH RECENT"))[0] == b"* SEARCH 1 2 3\r\n"
        third = await open_raw(imap)
        assert _recent(await third.cmd("SELECT INBOX")) == 0
        await third.close()
        assert b"RECENT 0" in (await other.cmd("STATUS INBOX (RECENT)"))[0]
    finally:
        await c.close()
        await other.close()
