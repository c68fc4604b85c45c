"""A selected session reads the store after a command only when its account's change event
fired (or its last poll is old), once every process's changes reach the events
(``MailboxEvents.complete``: what the PostgreSQL listener sets while connected)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

from mailserver.imap import state
from tests.imap.conftest import Imap, Raw, message, open_raw
from tests.statements import recorded_statements


def statements(imap: Imap) -> AbstractContextManager[list[str]]:
    """The SQL statements run on the database meanwhile."""
    return recorded_statements(imap.services.db)


@asynccontextmanager
async def two_sessions(imap: Imap, messages: int) -> AsyncIterator[tuple[Raw, Raw]]:
    """``messages`` in INBOX, then two sessions with it selected."""
    for n in range(1, messages + 1):
        await imap.services.store.append(imap.account_id, "INBOX", message(n))
    c, other = await open_raw(imap), await open_raw(imap)
    try:
        await c.cmd("SELECT INBOX")
        await other.cmd("SELECT INBOX")
        yield c, other
    finally:
        await c.close()
        await other.close()


async def test_no_store_read_without_a_change_then_changes_are_reported(imap: Imap) -> None:
    imap.services.events.complete = True  # as the PostgreSQL listener does while connected
    await imap.services.store.append(imap.account_id, "INBOX", message(1))
    c = await open_raw(imap)
    other = await open_raw(imap)
    try:
        assert any(b"1 EXISTS" in ln for ln in await c.cmd("SELECT INBOX"))
        await c.cmd("NOOP")
        with statements(imap) as quiet:
            assert await c.cmd("NOOP") == [b"t4 OK NOOP completed\r\n"]
        assert quiet == []

        # Another session's write sets the event: the next command reads and reports it.
        await other.cmd("SELECT INBOX")
        await other.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
        await imap.services.store.append(imap.account_id, "INBOX", message(2))
        with statements(imap) as polled:
            lines = await c.cmd("NOOP")
        assert polled
        assert b"* 2 EXISTS\r\n" in lines
        assert any(b"FETCH" in ln and b"\\Flagged" in ln for ln in lines)
    finally:
        await c.close()
        await other.close()


async def test_a_stale_view_is_polled_even_without_an_event(imap: Imap, monkeypatch: Any
                                                            ) -> None:
    imap.services.events.complete = True
    monkeypatch.setattr(state, "POLL_EVERY", 0.0)
    c = await open_raw(imap)
    try:
        await c.cmd("SELECT INBOX")
        with statements(imap) as seen:
            await c.cmd("NOOP")
        assert seen
    finally:
        await c.close()


async def test_deleting_the_selected_folder_elsewhere_ends_the_session(imap: Imap) -> None:
    imap.services.events.complete = True
    await imap.services.store.create_folder(imap.account_id, "Dossiers")
    c = await open_raw(imap)
    other = await open_raw(imap)
    try:
        await c.cmd("SELECT Dossiers")
        await c.cmd("NOOP")
        assert (await other.cmd("DELETE Dossiers"))[-1].split()[1] == b"OK"
        lines = await c.cmd("NOOP")
        assert b"* BYE the selected mailbox no longer exists\r\n" in lines
    finally:
        await c.close()
        await other.close()


async def test_without_complete_events_every_command_polls(imap: Imap) -> None:
    assert imap.services.events.complete is False  # SQLite, or no listener: unchanged
    c = await open_raw(imap)
    try:
        await c.cmd("SELECT INBOX")
        await c.cmd("NOOP")
        with statements(imap) as seen:
            await c.cmd("NOOP")
        assert seen
    finally:
        await c.close()


async def test_a_fetch_polls_again_only_while_it_holds_expunges_back(imap: Imap) -> None:
    """FETCH may not report EXPUNGE (RFC 3501 7.4.1): the next command polls again only when
    the last poll left an expunge unreported, not after every FETCH."""
    imap.services.events.complete = True
    async with two_sessions(imap, 3) as (c, other):
        await other.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")  # an event: the next FETCH polls
        with statements(imap) as polled:
            assert any(b"\\Flagged" in ln for ln in await c.cmd("FETCH 1:3 (FLAGS)"))
        assert polled
        with statements(imap) as quiet:
            await c.cmd("FETCH 1:3 (UID)")
            await c.cmd("FETCH 2 (UID)")
        assert not any("folders" in q for q in quiet)  # nothing held back: no poll

        await other.cmd("STORE 3 +FLAGS.SILENT (\\Deleted)")
        await other.cmd("EXPUNGE")
        lines = await c.cmd("FETCH 1 (UID)")  # polls, may not say EXPUNGE: held back
        assert not any(b"EXPUNGE" in ln for ln in lines)
        with statements(imap) as again:
            lines = await c.cmd("NOOP")  # polls again, and reports it now
        assert again
        assert b"* 3 EXPUNGE\r\n" in lines


async def _pipeline(raw: Raw, *commands: str) -> list[bytes]:
    """Send ``commands`` in one write (tags p1, p2, ...); every line up to the last tagged."""
    await raw.write(b"".join(f"p{n} {cmd}\r\n".encode()
                             for n, cmd in enumerate(commands, 1)))
    return await raw.until(f"p{len(commands)}")


async def test_no_expunge_reaches_a_client_whose_pipelined_commands_wait(imap: Imap) -> None:
    """RFC 3501 5.5: the FETCH after LIST was numbered with the client's view; telling the
    other session's expunge after LIST would move message 3 out of range."""
    async with two_sessions(imap, 3) as (c, other):
        await other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert (await other.cmd("EXPUNGE"))[-1].split()[1] == b"OK"

        lines = await _pipeline(c, 'LIST "" INBOX', "FETCH 3 (UID)", "NOOP")
        tagged = [ln.split()[0] for ln in lines if ln.startswith(b"p")]
        assert tagged == [b"p1", b"p2", b"p3"], lines
        assert all(ln.split()[1] == b"OK" for ln in lines if ln.startswith(b"p")), lines
        assert b"* 3 FETCH (UID 3)\r\n" in lines
        expunge = lines.index(b"* 1 EXPUNGE\r\n")
        assert expunge > lines.index(next(ln for ln in lines if ln.startswith(b"p2 ")))
        assert (await c.cmd("FETCH 2 (UID)"))[0] == b"* 2 FETCH (UID 3)\r\n"


async def test_a_pipeline_is_told_of_new_mail_once_at_its_end(imap: Imap) -> None:
    imap.services.events.complete = True
    await imap.services.store.append(imap.account_id, "INBOX", message(1))
    c = await open_raw(imap)
    try:
        await c.cmd("SELECT INBOX")
        await imap.services.store.append(imap.account_id, "INBOX", message(2))
        lines = await _pipeline(c, "NOOP", "NOOP", "NOOP", "NOOP")
        assert lines.count(b"* 2 EXISTS\r\n") == 1
        assert lines.index(b"* 2 EXISTS\r\n") > lines.index(b"p3 OK NOOP completed\r\n")
    finally:
        await c.close()
