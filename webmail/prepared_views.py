"""The archive prepared in the background for a large space: "Préparer l'archive" on the
export page (``POST /parametres/export/preparer``), then its download once ready
(``/parametres/export/archive``, decrypted as it streams), for ``[export] ready_days``.
The job and the notice are :mod:`mailserver.export.prepared`'s."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound
from mailserver.export.layout import archive_name
from mailserver.export.prepared import PreparedExports
from mailserver.lifecycle import PARIS
from webmail.web import DEPS, current_account, see_other

__all__ = ["setup", "prepared_context", "ZIP_HEADERS"]

log = logging.getLogger(__name__)

ZIP_HEADERS = {
    "Content-Type": "application/zip",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
"""Set before the headers go out (the app's middleware sets its own after the handler, too
late for a streamed response)."""

_NOTICE = {"demandee": "Votre demande est enregistrée. Vous recevrez un courriel dès que "
                       "l'archive sera prête."}


def _prepared(request: web.Request) -> PreparedExports:
    prepared = request.app[DEPS].prepared
    if prepared is None:
        raise web.HTTPNotFound()
    return prepared


def _day(moment: datetime | None) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y") if moment is not None else ""


async def prepared_context(request: web.Request, account: AccountInfo) -> dict[str, Any]:
    """What the export page says about a prepared archive: ``mode`` is "direct" (stream it
    now), "preparer" (a large space: offer to prepare it), "preparation" or "prete"."""
    prepared = request.app[DEPS].prepared
    ctx: dict[str, Any] = {"mode": "direct", "days": 7,
                           "notice": _NOTICE.get(request.query.get("info", ""), "")}
    if prepared is None:
        return ctx
    ctx["days"] = prepared.keep.days
    status = await prepared.status(account.id)
    if status is not None and status.ready_at is not None:
        ctx.update(mode="prete", expires=_day(status.expires_at),
                   ready=_day(status.ready_at), size_mb=max(1, round(status.size / 2**20)))
    elif status is not None:
        ctx.update(mode="preparation", requested=_day(status.requested_at))
    elif await prepared.large(account):
        ctx.update(mode="preparer")
    return ctx


async def prepare(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    await _prepared(request).request(account)
    return see_other("/parametres/export?info=demandee")


async def download(request: web.Request) -> web.StreamResponse:
    """The prepared archive, decrypted as it streams (nothing decrypted is kept)."""
    account = current_account(request)
    prepared = _prepared(request)
    status = await prepared.status(account.id)
    if status is None or status.ready_at is None:
        raise web.HTTPSeeOther("/parametres/export")
    chunks = prepared.stream(account)
    try:
        first = await anext(chunks)  # a missing or unreadable archive is still a redirect
    except (NotFound, StopAsyncIteration):
        raise web.HTTPSeeOther("/parametres/export") from None
    response = web.StreamResponse(headers={
        **ZIP_HEADERS, "Content-Disposition":
            f'attachment; filename="{archive_name(status.ready_at or datetime.now(UTC))}"'})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    except Exception:  # noqa: BLE001 - cut the connection: never a truncated archive
        log.warning("webmail: prepared archive download interrupted")
        response.force_close()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/parametres/export/preparer", prepare)
    r.add_get("/parametres/export/archive", download)
