"""Protocol-level behaviour over raw sockets: literals, SASL, STARTTLS, bad input, fuzzing."""

from __future__ import annotations

import asyncio
import base64
import ssl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailserver.imap.server import MAX_BAD

from .conftest import Imap, message, open_raw


async def test_synchronising_literal_and_literal_plus(imap: Imap) -> None:
    raw = await open_raw(imap)
    msg = message(1)
    await raw.write(b"a1 APPEND INBOX (\\Seen) {%d}\r\n" % len(msg))
    assert (await raw.line()).startswith(b"+ ")
    await raw.write(msg + b"\r\n")
    res = await raw.until("a1")
    assert res[-1].startswith(b"a1 OK [APPENDUID ")
    # LITERAL+ (RFC 7888): no continuation; the server must not send one.
    msg2 = message(2)
    await raw.write(b"a2 APPEND INBOX {%d+}\r\n" % len(msg2) + msg2 + b"\r\n")
    res = await raw.until("a2")
    assert res == [res[-1]] and res[-1].startswith(b"a2 OK [APPENDUID ")
    # A literal login (astring as literal).
    res = await raw.cmd(b'SELECT {5+}\r\nINBOX')
    assert b"* 2 EXISTS\r\n" in res
    await raw.close()


async def test_authenticate_plain_with_continuation_and_cancel(imap: Imap) -> None:
    raw = await open_raw(imap, login=False)
    await raw.write(b"a1 AUTHENTICATE PLAIN\r\n")
    assert await raw.line() == b"+ \r\n"
    await raw.write(b"*\r\n")
    assert (await raw.line()).startswith(b"a1 BAD")
    await raw.write(b"a2 AUTHENTICATE PLAIN\r\n")
    assert await raw.line() == b"+ \r\n"
    token = base64.b64encode(f"\0{imap.user}\0{imap.password}".encode())
    await raw.write(token + b"\r\n")
    line = await raw.line()
    assert line.startswith(b"a2 OK [CAPABILITY "), line
    res = await raw.cmd("SELECT INBOX")
    assert res[-1].startswith(b"t1 OK [READ-WRITE]")
    await raw.close()


async def test_starttls_drops_pipelined_cleartext(imap: Imap) -> None:
    """CVE-2011-0411: a command injected after STARTTLS in clear text is not executed."""
    raw = await open_raw(imap, login=False, implicit=False)
    await raw.write(b"a1 STARTTLS\r\na2 LOGIN x y\r\n")
    assert (await raw.line()).startswith(b"a1 OK")
    await raw.writer.start_tls(imap.tls, server_hostname="localhost")
    res = await raw.cmd("CAPABILITY")
    assert not any(line.startswith(b"a2 ") for line in res), res
    assert b"AUTH=PLAIN" in res[0]
    res = await raw.cmd("STARTTLS")
    assert res[-1].startswith(b"t2 BAD")
    await raw.close()


async def test_state_errors_and_bad_syntax_have_useful_text(imap: Imap) -> None:
    raw = await open_raw(imap, login=False)
    assert (await raw.cmd("SELECT INBOX"))[-1] == b"t1 BAD SELECT is not allowed before login\r\n"
    await raw.cmd(f'LOGIN "{imap.user}" "{imap.password}"')
    res = await raw.cmd("FETCH 1 FLAGS")
    assert res[-1].startswith(b"t3 BAD FETCH is not allowed without a selected mailbox")
    assert (await raw.cmd("FROB"))[-1] == b"t4 BAD unknown command\r\n"
    assert (await raw.cmd("FETCH 1 (FLAGS"))[-1].startswith(b"t5 BAD FETCH: ")
    await raw.write(b"\x00\x01garbage\r\n")
    assert (await raw.line()).startswith(b"* BAD")
    await raw.cmd("SELECT INBOX")
    assert (await raw.cmd("FETCH 1 (BINARY[1.MIME])"))[-1].startswith(b"t7 BAD FETCH: BINARY")
    res = await raw.cmd("FETCH 5 FLAGS")
    assert res[-1].startswith(b"t8 NO [CLIENTBUG]")
    await raw.close()


async def test_too_many_bad_commands_close_the_connection(imap: Imap) -> None:
    raw = await open_raw(imap)
    await raw.write(b"x BOGUS\r\n" * (MAX_BAD + 5))
    lines = [await raw.line() for _ in range(MAX_BAD + 1)]
    assert lines[-1].startswith(b"* BYE")
    assert await raw.reader.read() == b""


async def test_long_line_and_huge_literal_are_refused(imap: Imap) -> None:
    raw = await open_raw(imap)
    await raw.write(b"a1 NOOP " + b"x" * 70000 + b"\r\n")
    assert (await raw.line()).startswith(b"a1 BAD line too long")
    await raw.write(b"a2 APPEND INBOX {999999999999}\r\n")
    assert (await raw.line()).startswith(b"a2 BAD")
    assert (await raw.cmd("NOOP"))[-1].startswith(b"t2 OK")
    await raw.close()


async def test_idle_raw_and_done(imap: Imap) -> None:
    a, b = await open_raw(imap), await open_raw(imap)
    await a.cmd("SELECT INBOX")
    await b.cmd("SELECT INBOX")
    await imap.services.store.append(imap.account_id, "INBOX", message(1))
    await a.write(b"i IDLE\r\n")
    assert (await a.line()).startswith(b"+ ")
    assert await a.line() == b"* 1 EXISTS\r\n"
    assert await a.line() == b"* 1 RECENT\r\n"
    await b.cmd("NOOP")  # b learns of message 1 first
    await b.cmd("STORE 1 +FLAGS (\\Answered)")
    assert (await a.line()).startswith(b"* 1 FETCH (UID 1 FLAGS (\\Answered")
    await a.write(b"DONE\r\n")
    assert (await a.line()).startswith(b"i OK")
    for c in (a, b):
        await c.close()


_printable = st.binary(min_size=0, max_size=300)
_tokens = st.lists(st.sampled_from([
    b"a", b" ", b"\r\n", b"{3}\r\n", b"{4+}\r\n", b"(", b")", b'"', b"\\", b"*", b"1:*",
    b"FETCH", b"UID", b"SEARCH", b"STORE", b"APPEND", b"BODY[", b"]", b"<0.10>", b"SELECT",
    b"INBOX", b"IDLE", b"DONE", b"LOGOUT", b"~{2}\r\n", b"\x00", b"\xff", b"NOT", b"OR",
]), max_size=40).map(b"".join)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(junk=st.one_of(_printable, _tokens))
async def test_fuzz_does_not_crash_or_disturb_other_sessions(imap: Imap, junk: bytes) -> None:
    watcher = await open_raw(imap)
    await watcher.cmd("SELECT INBOX")
    fuzz = await open_raw(imap)
    await fuzz.cmd("SELECT INBOX")
    fuzz.writer.write(junk + b"\r\n")
    await fuzz.writer.drain()
    # The fuzzed session still answers (or has closed cleanly) ...
    try:
        await fuzz.write(b"\r\nzz NOOP\r\n")
        while True:
            line = await fuzz.line(timeout=3)
            if not line or line.startswith(b"zz ") or line.startswith(b"* BYE"):
                break
            if line.startswith(b"+ "):  # it opened a literal or IDLE: feed it and go on
                await fuzz.write(b"DONE\r\n" + b"x" * 8 + b"\r\nzz NOOP\r\n")
    except (ConnectionError, asyncio.TimeoutError, ssl.SSLError):
        pass
    await fuzz.close()
    # ... and the other session is untouched.
    assert (await watcher.cmd("NOOP"))[-1].startswith(b"t3 OK")
    await watcher.close()


async def test_reader_memory_is_bounded(imap: Imap) -> None:
    raw = await open_raw(imap)
    # 5 MB without a newline: refused as too long, not buffered.
    for _ in range(50):
        raw.writer.write(b"y" * 100_000)
    raw.writer.write(b"\r\n")
    await raw.writer.drain()
    assert (await raw.line()).startswith(b"* BAD line too long")
    assert (await raw.cmd("NOOP"))[-1].startswith(b"t2 OK")
    await raw.close()




async def test_non_protocol_first_line(imap: Imap) -> None:
    """An HTTP request sent to the IMAP port gets BAD answers, never a crash or a login."""
    raw = await open_raw(imap, login=False)
    await raw.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await raw.line()
    assert first.startswith(b"GET BAD") or first.startswith(b"* BAD"), first
    second = await raw.line()
    assert b"BAD" in second
    assert (await raw.cmd("CAPABILITY"))[-1].startswith(b"t1 OK")
    await raw.close()


async def test_changedsince_fetch_sets_seen_and_reports_flags(imap: Imap) -> None:
    for i in range(3):
        await imap.services.store.append(imap.account_id, "INBOX", message(i))
    c = await open_raw(imap)
    await c.cmd("SELECT INBOX")
    res = await c.cmd("FETCH 1:* (BODY[TEXT]) (CHANGEDSINCE 1)")
    assert sum(b"FLAGS (\\Seen \\Recent)" in line and b"MODSEQ (" in line for line in res) == 3, res
    res = await c.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 100000)")
    assert res == [res[-1]]
    await c.close()



async def test_closed_sessions_leave_no_subscriptions(imap: Imap) -> None:
    """Sessions that end (LOGOUT, dropped connection, IDLE then drop) release what they held."""
    events = imap.services.events
    for i in range(10):
        c = await open_raw(imap)
        await c.cmd("SELECT INBOX")
        if i % 3 == 0:
            await c.cmd("LOGOUT")
        elif i % 3 == 1:
            await c.write(b"i IDLE\r\n")
            await c.line()
        await c.close()
    for _ in range(50):
        if not events._subs.get(imap.account_id):  # noqa: SLF001
            break
        await asyncio.sleep(0.02)
    assert not events._subs.get(imap.account_id)  # noqa: SLF001
