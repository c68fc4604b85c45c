"""Malformed MAIL/RCPT addresses are refused as such, never an internal error (tests/fuzz)."""

from __future__ import annotations

import pytest

from .conftest import Server, ServerFactory


@pytest.mark.parametrize("arg", ["<", "< ", "<\"", "<@"])
async def test_cut_address_is_malformed_not_internal(make_server: ServerFactory, arg: str) -> None:
    server: Server = await make_server()
    client = await server.client()
    code, text = await client.cmd(f"MAIL FROM:{arg}")
    assert code in (501, 553), text
    assert (await client.cmd("MAIL FROM:<a@example.org>"))[0] == 250
    code, text = await client.cmd(f"RCPT TO:{arg}")
    assert code in (501, 553), text
    assert (await client.cmd("RCPT TO:<b@example.org>"))[0] == 250
    await client.close()


async def test_undecodable_argument_echoed_in_a_reply(make_server: ServerFactory) -> None:
    server: Server = await make_server(enable_SMTPUTF8=True)
    client = await server.client()
    await client.send(b"VRFY \xff@\r\n")
    code, text = await client.reply()
    assert code == 502 and "Could not VRFY" in text, text
    assert (await client.cmd("NOOP"))[0] == 250
    await client.close()
