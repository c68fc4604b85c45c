"""Client addresses behind a trusted reverse proxy (rate limits must not lump patients)."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from webmail.clientaddr import client_address


class _Transport:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 4242) if name == "peername" else default


def _request(peer: str, xff: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    return make_mocked_request("GET", "/", headers=headers, transport=_Transport(peer))


def test_direct_client() -> None:
    assert client_address(_request("203.0.113.7", "198.51.100.1"), ()) == "203.0.113.7"


def test_untrusted_peer_cannot_forge_forwarded_for() -> None:
    assert client_address(_request("203.0.113.7", "1.2.3.4"), ("127.0.0.1",)) == "203.0.113.7"


def test_trusted_proxy_uses_rightmost_untrusted_hop() -> None:
    req = _request("127.0.0.1", "6.6.6.6, 198.51.100.9, 10.0.0.2")
    assert client_address(req, ("127.0.0.1", "10.0.0.2")) == "198.51.100.9"


def test_trusted_proxy_without_header() -> None:
    assert client_address(_request("127.0.0.1"), ("127.0.0.1",)) == "127.0.0.1"
