"""Response headers: a neutral ``Server`` header, and HSTS only over HTTPS (issue 9, item 26)."""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from mailserver.app import Services
from mailserver.config import Config
from mailserver.runtime import webmail_deps
from mailserver.tls import server_context
from tests.webmail.conftest import World
from webmail.app import make_app


async def test_server_header_names_no_software_version(world: World) -> None:
    for path in ("/connexion", "/nexiste-pas", "/static/style.css", "/api/conversations",
                 "/conversations/99999999999999999999"):
        r = await world.client.get(path, allow_redirects=False)
        server = r.headers.get("Server", "")
        assert "python" not in server.lower() and "aiohttp" not in server.lower(), path
        assert not any(c.isdigit() for c in server), server


def _secure(services: Services, trusted: tuple[str, ...] = ()) -> Services:
    services.config = dataclasses.replace(services.config, webmail=dataclasses.replace(
        services.config.webmail, secure_cookies=True, trusted_proxies=trusted))
    return services


async def test_no_hsts_over_plain_http_even_with_secure_cookies(
        services: Services, aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(webmail_deps(_secure(services))))
    r = await client.get("/connexion")
    assert "Strict-Transport-Security" not in r.headers
    # An untrusted client cannot claim HTTPS.
    r = await client.get("/connexion", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in r.headers


async def test_hsts_behind_a_trusted_proxy_that_says_https(
        services: Services, aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(webmail_deps(_secure(services, ("127.0.0.1",)))))
    r = await client.get("/connexion", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    r = await client.get("/connexion", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in r.headers


async def test_hsts_over_real_tls(services: Services, config: Config,
                                  client_tls: ssl.SSLContext) -> None:
    server = TestServer(make_app(webmail_deps(_secure(services))), host="127.0.0.1")
    await server.start_server(ssl=server_context(config.path(config.tls.cert_file),
                                                 config.path(config.tls.key_file)))
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"https://127.0.0.1:{server.port}/connexion", ssl=client_tls,
                server_hostname="localhost") as r:
            assert r.status == 200
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
            assert "aiohttp" not in r.headers.get("Server", "")
    finally:
        await server.close()
