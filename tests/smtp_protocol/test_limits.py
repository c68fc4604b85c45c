"""Per-connection limits, timeouts and error replies over real sockets."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from .conftest import RecordingHandler, Server, ServerFactory, stuff


async def test_bad_command_flood_gets_421(make_server: ServerFactory) -> None:
    server: Server = await make_server(max_errors=20)
    client = await server.client()
    codes = [(await client.cmd("RCPT TO:<x@example.org>"))[0] for _ in range(19)]
    assert codes == [503] * 19
    code, text = await client.cmd("RCPT TO:<x@example.org>")
    assert code == 503
    code, text = await client.reply()
    assert code == 421 and "4.7.0" in text
    assert (await client.reply())[0] == 0  # closed
    await client.close()


async def test_errors_are_counted_per_connection(make_server: ServerFactory) -> None:
    server: Server = await make_server(max_errors=3)
    first = await server.client()
    for _ in range(2):
        assert (await first.cmd("DATA"))[0] == 503
    second = await server.client()
    assert (await second.cmd("DATA"))[0] == 503
    assert (await second.cmd("NOOP"))[0] == 250
    assert (await first.cmd("DATA"))[0] == 503
    assert (await first.reply())[0] == 421
    assert (await second.cmd("NOOP"))[0] == 250
    await first.close()
    await second.close()


async def test_command_byte_budget(make_server: ServerFactory) -> None:
    server: Server = await make_server(max_command_bytes=200)
    client = await server.client()
    # EHLO took 25 bytes, each NOOP line counts 47: the fourth goes over 200.
    codes = [(await client.cmd("NOOP " + "x" * 40))[0] for _ in range(4)]
    assert codes == [250, 250, 250, 421]
    assert (await client.reply())[0] == 0  # closed
    await client.close()


async def test_overlong_command_line_is_refused(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    client = await server.client()
    assert (await client.cmd("NOOP " + "x" * 5000))[0] == 500
    assert (await client.cmd("NOOP"))[0] == 250
    await client.close()


async def test_handler_exception_gives_451_without_text(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handler = RecordingHandler(fail_with=RuntimeError("secret-db-password-in-message"))
    server: Server = await make_server(handler=handler)
    client = await server.client()
    await client.envelope()
    with caplog.at_level(logging.ERROR, logger="mailserver.smtp.protocol"):
        await client.send(stuff(b"hello\r\n"))
        code, text = await client.reply()
    assert code == 451 and text.startswith("451 4.3.0 Internal error (ref ")
    assert "secret" not in text and "RuntimeError" not in text
    ref = text.split("(ref ")[1].split(")")[0]
    logged = [r for r in caplog.records if ref in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "secret-db-password-in-message" in caplog.text  # traceback kept for operators
    # The connection survives.
    assert (await client.cmd("NOOP"))[0] == 250
    await client.close()


async def test_slow_client_does_not_block_another(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    slow = await server.client()
    await slow.envelope()
    await slow.send(b"Subject: slow\r\n\r\npart")  # and then nothing for a while
    flood = await server.client()
    for _ in range(5):
        await flood.cmd("XXXX")  # unrecognised commands on a third connection
    fast = await server.client()
    started = time.monotonic()
    for i in range(20):
        await fast.envelope()
        await fast.send(stuff(b"msg %d\r\n" % i))
        assert (await fast.reply())[0] == 250
    assert time.monotonic() - started < 2.0
    await slow.send(b"\r\n.\r\n")
    assert (await slow.reply())[0] == 250
    assert len(server.handler.envelopes) == 21
    for client in (slow, flood, fast):
        await client.close()


async def test_idle_timeout_closes(make_server: ServerFactory) -> None:
    server: Server = await make_server(timeout=0.3)
    client = await server.client()
    started = time.monotonic()
    assert (await client.reply(timeout=3))[0] == 0
    assert time.monotonic() - started < 2.0
    await client.close()


async def test_idle_timeout_in_data_is_rearmed_per_chunk(make_server: ServerFactory) -> None:
    server: Server = await make_server(timeout=0.4)
    client = await server.client()
    await client.envelope()
    for _ in range(8):  # 1.6 s in total, never idle for 0.4 s
        await client.send(b"line\r\n")
        await asyncio.sleep(0.2)
    await client.send(b".\r\n")
    assert (await client.reply())[0] == 250


async def test_data_timeout_bounds_a_trickle(make_server: ServerFactory) -> None:
    server: Server = await make_server(timeout=5, data_timeout=0.5)
    client = await server.client()
    await client.envelope()
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < 3:
        try:
            await client.send(b"x")
        except ConnectionError:
            closed = True
            break
        if client.reader.at_eof():
            closed = True
            break
        await asyncio.sleep(0.05)
    if not closed:
        closed = (await client.reply(timeout=1))[0] == 0
    assert closed and time.monotonic() - started < 2.0
    assert server.handler.envelopes == []
    await client.close()


async def test_session_carries_conn_id(make_server: ServerFactory) -> None:
    seen: list[str] = []

    class Handler(RecordingHandler):
        async def handle_NOOP(self, server, session, envelope, arg):  # type: ignore[no-untyped-def]
            seen.append(session.conn_id)
            assert server.conn_id == session.conn_id
            return "250 OK"

    server: Server = await make_server(handler=Handler())
    a = await server.client()
    b = await server.client()
    await a.cmd("NOOP")
    await b.cmd("NOOP")
    assert len(set(seen)) == 2 and all(len(c) == 8 for c in seen)
    await a.close()
    await b.close()
