"""The operator's admin listener: ``/metrics``, ``/healthz`` and ``/readyz``.

Served on its own address (``mssante serve --metrics HOST:PORT`` or ``[listen] metrics``),
never on the patients' HTTP port: bind it to loopback or an administration network.

* ``/healthz``: 200 while the process serves requests (liveness).
* ``/readyz``: runs every readiness check (the database answers a query, the blob folder is
  writable or the S3 bucket answers HeadBucket); 200 when all pass, else 503 with one line
  per failed check. A check taking more than :data:`CHECK_TIMEOUT` seconds fails.
* ``/metrics``: the Prometheus text format of :mod:`mailserver.metrics`; the values read from
  the database (queue depth, webmail sessions) are refreshed first by the ``refresh``
  collaborators. A refresh that fails is logged and leaves the previous value.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from mailserver import metrics

__all__ = ["AdminDeps", "make_admin_app", "start_admin", "CHECK_TIMEOUT"]

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0
Check = Callable[[], Awaitable[None]]
"""Raises when the component is not ready; the exception's text says why (no secrets)."""


@dataclass(frozen=True)
class AdminDeps:
    checks: Mapping[str, Check]
    """Readiness checks by name (``database``, ``blobs``)."""
    refresh: Sequence[Check] = ()
    """Run before each scrape: they set the gauges read from the database."""


_DEPS = web.AppKey("admin_deps", AdminDeps)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _run_check(name: str, check: Check) -> str | None:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"{name}: no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"{name}: {exc or type(exc).__name__}"
    return None


async def _readyz(request: web.Request) -> web.Response:
    checks = request.app[_DEPS].checks
    results = await asyncio.gather(*(_run_check(n, c) for n, c in checks.items()))
    failed = [r for r in results if r is not None]
    if failed:
        log.warning("admin: not ready: %s", "; ".join(failed))
        return web.Response(status=503, text="".join(f"{f}\n" for f in failed))
    return web.Response(text="ready\n")


async def _metrics(request: web.Request) -> web.Response:
    for refresh in request.app[_DEPS].refresh:
        try:
            await asyncio.wait_for(refresh(), CHECK_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - serve the other metrics anyway
            log.warning("admin: metrics refresh failed: %s", type(exc).__name__)
    body = metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    return response


def make_admin_app(deps: AdminDeps) -> web.Application:
    """The admin application (also used by aiohttp's test client)."""
    app = web.Application()
    app[_DEPS] = deps
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


async def start_admin(deps: AdminDeps, host: str, port: int, *,
                      sock: socket.socket | None = None
                      ) -> tuple[web.AppRunner, tuple[str, int]]:
    """Serve the admin application on ``host:port`` (0 = ephemeral); returns the runner and
    the bound address."""
    runner = web.AppRunner(make_admin_app(deps), access_log=None, shutdown_timeout=1)
    await runner.setup()
    site: web.BaseSite = (web.SockSite(runner, sock) if sock is not None
                          else web.TCPSite(runner, host, port))
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes no public bound-port accessor
    assert server is not None and hasattr(server, "sockets")  # noqa: S101
    name = server.sockets[0].getsockname()
    return runner, (name[0], name[1])
