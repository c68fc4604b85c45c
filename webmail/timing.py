"""Request latency per route, for the metrics (``mssante_http_request_seconds``).

The outermost middleware: it times every request of the webmail and of the applications
mounted beside it (``/fhir``). Requests are labelled with their route's template
(``/api/conversations/{cid}``), never the raw path (which would carry identifiers and grow
without bound); a request that matched no route is labelled ``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from mailserver import metrics

__all__ = ["timing_middleware", "route_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str:
    """The template of the route ``request`` matched, or ``unmatched``."""
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.HTTP_SECONDS.labels(route_of(request), request.method,
                                    f"{status // 100}xx").observe(time.monotonic() - started)
