"""IMAP listener hardening (issue 9): STARTTLS inside TLS, connections per client address."""

from __future__ import annotations

import pytest

from tests.imap.conftest import Imap, open_raw


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls-port", "imaps"])
@pytest.mark.parametrize("login", [False, True], ids=["before-login", "after-login"])
async def test_starttls_inside_tls_is_bad(imap: Imap, implicit: bool, login: bool) -> None:
    """RFC 3501 6.2.1: STARTTLS once TLS is active is a BAD; the session goes on."""
    raw = await open_raw(imap, login=False, implicit=implicit)
    if not implicit:
        assert (await raw.cmd("STARTTLS"))[-1].startswith(b"t1 OK")
        await raw.writer.start_tls(imap.tls, server_hostname="localhost")
    if login:
        res = await raw.cmd(f'LOGIN "{imap.user}" "{imap.password}"')
        assert res[-1].split()[1] == b"OK", res
    res = await raw.cmd("STARTTLS")
    assert res[-1].split()[1] == b"BAD", res
    assert (await raw.cmd("NOOP"))[-1].split()[1] == b"OK"
    await raw.close()


async def test_refused_idle_does_not_stall_the_session(imap: Imap) -> None:
    """Same root as STARTTLS: a refused mode-changing command leaves the reader usable."""
    raw = await open_raw(imap, login=False)
    assert (await raw.cmd("IDLE"))[-1].split()[1] == b"BAD"
    assert (await raw.cmd("NOOP"))[-1].split()[1] == b"OK"
    await raw.close()
