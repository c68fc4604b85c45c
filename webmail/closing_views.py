"""Closing the space ("Fermer mon espace santé") and the deletion of its data on request: the
page ``/parametres/fermer`` and ``POST /api/account/close``, ``POST /api/account/delete-request``.

Both ask for the password again (through the directory: counted, locked out like a login).
Closing ends every session of the account at once (the closing service deletes them in its
transaction); the page then shows the confirmation to a logged-out visitor. The export is
offered first (``/parametres/export``, served by the export views).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from mailserver.directory.closing import AccountClosing, DeletionStatus
from mailserver.directory.service import AccountInfo
from mailserver.errors import AuthError
from mailserver.lifecycle import Actor
from mailserver.store.audit import Channel
from webmail.clientaddr import client_address
from webmail.flows import FlowError
from webmail.web import (
    DEPS,
    R_ACCOUNT,
    R_SESSION,
    SESSION_COOKIE,
    current_account,
    json_body,
    render,
)

__all__ = ["setup", "deletion_json"]

_WRONG = "Mot de passe incorrect : votre espace santé n'a pas été fermé."
_CONFIRM = "Cochez la case de confirmation pour fermer votre espace santé."


def _closing(request: web.Request) -> AccountClosing:
    closing = request.app[DEPS].closing
    if closing is None:
        raise web.HTTPNotFound()
    return closing


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def deletion_json(status: DeletionStatus | None) -> dict[str, Any] | None:
    """The deletion request as ``GET /api/account`` shows it."""
    if status is None:
        return None
    return {"requested_at": status.requested_at.isoformat(),
            "effective_at": _iso(status.effective_at), "done": status.done}


async def _check_password(request: web.Request, account: AccountInfo, password: str,
                          wrong: str = _WRONG) -> None:
    deps = request.app[DEPS]
    client = client_address(request, deps.settings.webmail.trusted_proxies)
    try:
        await deps.directory.authenticate(account.address, password, client=client,
                                          allow_patients=True, channel=Channel.WEBMAIL,
                                          mechanism="password-confirm")
    except AuthError as exc:
        if exc.locked:
            raise FlowError(["Trop de tentatives. Patientez avant de réessayer."], 429) from exc
        raise FlowError([wrong], 403) from exc


async def _close(request: web.Request, account: AccountInfo, password: str,
                 delete_archive: bool) -> None:
    await _check_password(request, account, password)
    await _closing(request).close(account.id, Actor.patient(), "online",
                                  delete_archive=delete_archive)
    request[R_SESSION] = None
    request[R_ACCOUNT] = None


async def api_close(request: web.Request) -> web.StreamResponse:
    """``{"password", "delete_archive"?}``: close the space; the session ends."""
    account = current_account(request)
    data = await json_body(request)
    password = data.get("password")
    try:
        await _close(request, account, password if isinstance(password, str) else "",
                     data.get("delete_archive") is True)
    except FlowError as exc:
        return web.json_response({"error": exc.messages[0], "details": exc.messages},
                                 status=exc.status)
    life = await request.app[DEPS].directory.lifecycle(account.id)
    response = web.json_response({
        "state": life.state.value, "since": life.since.isoformat(),
        "deletion": deletion_json(await _closing(request).deletion_status(account.id))})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def api_delete_request(request: web.Request) -> web.StreamResponse:
    """``{"password"}``: the archive will be deleted when the space closes (acknowledged by
    mail to the personal address)."""
    account = current_account(request)
    data = await json_body(request)
    password = data.get("password")
    try:
        await _check_password(request, account, password if isinstance(password, str) else "",
                              "Mot de passe incorrect : la demande n'a pas été enregistrée.")
    except FlowError as exc:
        return web.json_response({"error": exc.messages[0], "details": exc.messages},
                                 status=exc.status)
    status = await _closing(request).request_deletion(account.id, Actor.patient())
    return web.json_response({"deletion": deletion_json(status)})


async def close_get(request: web.Request) -> web.StreamResponse:
    current_account(request)
    _closing(request)
    return render(request, "fermer.html", {"errors": [], "done": False, "deleting": False})


async def close_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    form = await request.post()
    delete_archive = form.get("supprimer") == "oui"
    try:
        if form.get("confirmer") != "oui":
            raise FlowError([_CONFIRM], 400)
        await _close(request, account, str(form.get("password", "")), delete_archive)
    except FlowError as exc:
        return render(request, "fermer.html", {"errors": exc.messages, "done": False,
                                               "deleting": delete_archive}, status=exc.status)
    response = render(request, "fermer.html", {"errors": [], "done": True,
                                               "deleting": delete_archive})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/account/close", api_close)
    r.add_post("/api/account/delete-request", api_delete_request)
    r.add_get("/parametres/fermer", close_get)
    r.add_post("/parametres/fermer", close_post)
