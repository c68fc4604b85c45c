"""The client address used for rate limits and lockouts.

Behind a TLS reverse proxy every request comes from the proxy; counting failures per proxy
address would lock every patient out together. For requests from a configured trusted proxy the
address is taken from ``X-Forwarded-For``: the right-most entry that is not itself a trusted
proxy (the entries to its left could be forged by the client).
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

__all__ = ["client_address", "is_https"]


def _norm(value: str) -> str:
    value = value.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _direct(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return _norm(str(peer[0])) if isinstance(peer, tuple) and peer else (request.remote or "")


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    direct = _direct(request)
    trusted = {_norm(p) for p in trusted_proxies}
    if not direct:
        return "unknown"
    if direct not in trusted:
        return direct
    hops = [_norm(h) for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return direct


def is_https(request: web.Request, trusted_proxies: tuple[str, ...]) -> bool:
    """True if the client reached us over HTTPS: TLS on this connection, or a trusted proxy
    that says so in ``X-Forwarded-Proto`` (its last value: the one the proxy itself set)."""
    if request.transport is not None and request.transport.get_extra_info("sslcontext"):
        return True
    if _direct(request) not in {_norm(p) for p in trusted_proxies}:
        return False
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1]
    return proto.strip().lower() == "https"
