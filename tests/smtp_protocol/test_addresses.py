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
