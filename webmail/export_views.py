""""Télécharger mes données": the page explaining the export, and the ZIP itself
(``/parametres/export/telecharger`` for the browser, ``GET /api/export`` for API clients).

The archive is streamed as it is built (``mailserver.export``, through the ``AccountExporter``
seam): chunked transfer, no length announced, nothing of it kept on the server. A failure
after the first bytes cannot become an error page any more: the connection is cut without
the final chunk, so the client sees an incomplete download, never a truncated archive
passed off as complete.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from mailserver.export.layout import archive_name
from webmail.deps import AccountExporter
from webmail.prepared_views import ZIP_HEADERS, prepared_context
from webmail.web import DEPS, current_account, render

__all__ = ["setup"]

log = logging.getLogger(__name__)



def _exporter(request: web.Request) -> AccountExporter:
    export = request.app[DEPS].export
    if export is None:
        raise web.HTTPNotFound()
    return export


async def export_page(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    _exporter(request)
    return render(request, "export.html", await prepared_context(request, account))


async def download(request: web.Request) -> web.StreamResponse:
    """The archive of the logged-in patient's space, streamed."""
    account = current_account(request)
    export = _exporter(request)
    now = datetime.now(UTC)
    response = web.StreamResponse(headers={
        **ZIP_HEADERS, "Content-Disposition": f'attachment; filename="{archive_name(now)}"'})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in export.stream(account, now):
            await response.write(chunk)
    except (ConnectionResetError, OSError):
        log.info("webmail: export download interrupted by the client")
        response.force_close()
        return response
    except Exception:
        log.exception("webmail: export failed after the download started")
        response.force_close()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/parametres/export", export_page)
    r.add_get("/parametres/export/telecharger", download)
    r.add_get("/api/export", download)
