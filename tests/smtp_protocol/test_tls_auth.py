"""DATA after STARTTLS + AUTH PLAIN (real TLS with a trustme CA)."""

from __future__ import annotations

import base64
import logging
import ssl
from typing import Any

import aiosmtplib
import pytest
import trustme
from aiosmtpd.smtp import AuthResult

from .conftest import Server, ServerFactory


def accept_alice(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = data.login == b"alice" and data.password == b"s3cret"
    return AuthResult(success=ok, auth_data=data if ok else None)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_large_message_over_starttls_with_auth(
    make_server: ServerFactory, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    server: Server = await make_server(
        tls_context=server_ctx, require_starttls=True, auth_required=True,
        authenticator=accept_alice,
    )
    body = b"Subject: tls\r\n\r\n" + b"".join(
        b".%06d " % i + b"y" * 70 + b"\r\n" for i in range(14_000)
    )
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=True,
                               tls_context=client_ctx) as smtp:
        with caplog.at_level(logging.DEBUG):
            await smtp.login("alice", "s3cret")
        errors, _ = await smtp.sendmail("a@example.org", ["b@example.org"], body)
        assert errors == {}
        await smtp.sendmail("a@example.org", ["b@example.org"], b"Subject: 2\r\n\r\nsmall\r\n")
    assert [e.content for e in server.handler.envelopes] == [body, b"Subject: 2\r\n\r\nsmall\r\n"]
    # aiosmtpd's deprecated login_data warning is not emitted on every AUTH.
    assert not [r for r in caplog.records if "login_data" in r.getMessage()]


async def test_auth_plain_before_tls_is_refused(make_server: ServerFactory, ca: trustme.CA) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server: Server = await make_server(tls_context=server_ctx, authenticator=accept_alice)
    client = await server.client()
    token = base64.b64encode(b"\0alice\0s3cret").decode()
    code, _ = await client.cmd(f"AUTH PLAIN {token}")
    assert code == 538  # RFC 4954 4: encryption required
    await client.close()
