"""DATA over real sockets: byte-exact round trips, size limit, smuggling."""

from __future__ import annotations

import asyncio
import os
import smtplib

import aiosmtplib
import pytest

from .conftest import RawClient, Server, ServerFactory, stuff

ROUND_TRIP = [
    pytest.param(b"Subject: hi\r\n\r\nhello\r\n", id="simple"),
    pytest.param(b"", id="empty"),
    pytest.param(b".\r\n", id="single-dot-line"),
    pytest.param(b"..\r\n.x\r\n\r\n.\r\n...\r\n", id="dot-lines"),
    pytest.param(b".starts with a dot\r\nend\r\n", id="first-line-dot"),
    pytest.param(bytes(range(256)) * 4 + b"\r\n", id="8bit-binaryish"),
    pytest.param(b"a\rb\nc\r\r\n\n\r\n", id="bare-cr-lf-preserved"),
    pytest.param(b"x" * 200_000 + b"\r\n", id="very-long-line"),
]


@pytest.mark.parametrize("content", ROUND_TRIP)
async def test_round_trip_byte_exact(make_server: ServerFactory, content: bytes) -> None:
    server: Server = await make_server()
    client = await server.client()
    await client.envelope()
    await client.send(stuff(content))
    assert (await client.reply())[0] == 250
    assert (await client.cmd("QUIT"))[0] == 221
    (env,) = server.handler.envelopes
    assert env.content == content
    assert env.original_content == content
    assert env.mail_from == "a@example.org" and env.rcpt_tos == ["b@example.org"]


async def test_one_mebibyte_random_message(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    lines = [os.urandom(57).hex().encode() for _ in range(9200)]
    # Some lines start with a dot, some are a lone dot.
    lines[10] = b"." + lines[10]
    lines[20] = b"."
    content = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    assert len(content) > 1024 * 1024
    client = await server.client()
    for _ in range(2):  # two messages on one connection
        await client.envelope()
        await client.send(stuff(content))
        assert (await client.reply())[0] == 250
    assert [e.content == content for e in server.handler.envelopes] == [True, True]
    await client.close()


async def test_tiny_writes_at_every_boundary(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    content = b".a\r\n..\r\nb\r\n.\r\n"
    wire = stuff(content)
    client = await server.client()
    await client.envelope()
    for i in range(len(wire)):
        await client.send(wire[i : i + 1])
        await asyncio.sleep(0.002)  # let the server read each byte on its own
    assert (await client.reply())[0] == 250
    assert server.handler.envelopes[0].content == content
    # Now every split point of the end marker with a second message.
    for cut in range(1, 6):
        await client.envelope()
        wire = stuff(b"x\r\n")
        head, tail = wire[: len(wire) - cut], wire[len(wire) - cut :]
        await client.send(head)
        await asyncio.sleep(0.01)
        await client.send(tail)
        assert (await client.reply())[0] == 250
    assert len(server.handler.envelopes) == 6
    await client.close()


async def test_pipelined_command_after_end_marker(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    client = await server.client()
    await client.envelope()
    await client.send(stuff(b"hi\r\n") + b"NOOP\r\nQUIT\r\n")
    assert (await client.reply())[0] == 250
    assert (await client.reply())[0] == 250  # NOOP
    assert (await client.reply())[0] == 221
    assert server.handler.envelopes[0].content == b"hi\r\n"


async def test_size_limit_gives_552_and_connection_stays_usable(
    make_server: ServerFactory,
) -> None:
    server: Server = await make_server(data_size_limit=10_000)
    client = await server.client()
    await client.envelope()
    await client.send(stuff((b"z" * 998 + b"\r\n") * 200))
    code, text = await client.reply()
    assert code == 552 and "5.3.4" in text
    assert server.handler.envelopes == []
    # The same connection accepts the next, small message.
    await client.envelope()
    await client.send(stuff(b"small\r\n"))
    assert (await client.reply())[0] == 250
    assert server.handler.envelopes[0].content == b"small\r\n"
    await client.close()


async def test_exactly_at_limit_is_accepted(make_server: ServerFactory) -> None:
    content = b"a" * 98 + b"\r\n"
    server: Server = await make_server(data_size_limit=len(content))
    client = await server.client()
    await client.envelope()
    await client.send(stuff(content))
    assert (await client.reply())[0] == 250
    await client.envelope()
    await client.send(stuff(b"a" + content))
    assert (await client.reply())[0] == 552
    await client.close()


SMUGGLING = [
    pytest.param(b"\n.\n", id="lf-dot-lf"),
    pytest.param(b"\r.\r", id="cr-dot-cr"),
    pytest.param(b"\n.\r\n", id="lf-dot-crlf"),
    pytest.param(b"\r\n.\n", id="crlf-dot-lf"),
    pytest.param(b"\r.\r\n", id="cr-dot-crlf"),
]
SMUGGLED = b"MAIL FROM:<admin@victim.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nevil\r\n"


@pytest.mark.parametrize("fake_end", SMUGGLING)
async def test_smuggling_is_refused_as_a_whole(
    make_server: ServerFactory, fake_end: bytes
) -> None:
    server: Server = await make_server()
    client = await server.client()
    await client.envelope()
    await client.send(b"Subject: x\r\n\r\nhello" + fake_end + SMUGGLED + b".\r\n")
    code, text = await client.reply()
    assert code == 550 and "5.6.0" in text
    # Nothing smuggled was run as a command: the next reply answers *our* NOOP.
    code, text = await client.cmd("NOOP")
    assert code == 250
    assert server.handler.envelopes == []
    await client.close()


@pytest.mark.parametrize("fake_end", SMUGGLING)
async def test_smuggling_does_not_end_data_when_accepting(
    make_server: ServerFactory, fake_end: bytes
) -> None:
    server: Server = await make_server(reject_ambiguous_dot=False)
    client = await server.client()
    await client.envelope()
    body = b"Subject: x\r\n\r\nhello" + fake_end + SMUGGLED
    await client.send(body + b".\r\n")
    assert (await client.reply())[0] == 250
    assert (await client.cmd("NOOP"))[0] == 250
    (env,) = server.handler.envelopes
    assert env.mail_from == "a@example.org"
    # The fake end and the "commands" are message data (a CRLF "." line loses its dot, 4.5.2).
    assert env.content == body.replace(b"\r\n.", b"\r\n")
    await client.close()


async def test_smtplib_client(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    msg = "Subject: t\r\n\r\n.leading dot\r\nline\r\n.\r\nend\r\n"

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as smtp:
            smtp.sendmail("a@example.org", ["b@example.org", "c@example.org"], msg)

    await asyncio.to_thread(send)
    (env,) = server.handler.envelopes
    assert env.content == msg.encode()
    assert env.rcpt_tos == ["b@example.org", "c@example.org"]


async def test_aiosmtplib_client(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    msg = b"Subject: t\r\n\r\n" + "é".encode() * 10 + b"\r\n..\r\n"
    await aiosmtplib.send(
        msg, sender="a@example.org", recipients=["b@example.org"],
        hostname="127.0.0.1", port=server.port, start_tls=False,
    )
    assert server.handler.envelopes[0].content == msg


async def test_data_needs_recipient(make_server: ServerFactory) -> None:
    server: Server = await make_server()
    client: RawClient = await server.client()
    assert (await client.cmd("DATA"))[0] == 503
    assert (await client.cmd("MAIL FROM:<a@example.org>"))[0] == 250
    assert (await client.cmd("DATA"))[0] == 503
    await client.close()
