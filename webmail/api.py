"""JSON API under ``/api/`` (for a future mobile app): the same journeys and the same
authorisation as the HTML views.

Authentication: ``POST /api/login`` returns a token for the one-time-code step;
``POST /api/otp`` returns a NEW token (rotation) for everything else. Send it as
``Authorization: Bearer <token>``. A browser session cookie works too, but then every POST
must carry the session's ``X-CSRF-Token`` (from ``GET /api/session``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from webmail.clientaddr import client_address
from webmail.closing_views import deletion_json
from webmail.flows import FlowError, first_check, first_finish, login, oppose, verify_otp
from webmail.mail_views import attachment_response, conversation_view_model, uploads_of
from webmail.mailbox import ReplyRefused, Upload
from webmail.params import page_param, path_id
from webmail.profile_synthesis import synthesis_upload, wants_synthesis
from webmail.render import part_bytes
from webmail.sessions import SessionInfo
from webmail.web import (
    DEPS,
    MAILBOX,
    R_ATTACHMENT_CSP,
    R_CSRF,
    R_SESSION,
    SESSIONS,
    current_account,
    json_body,
)

__all__ = ["setup"]


def _client(request: web.Request) -> str:
    """The client's address for rate limits (see webmail.clientaddr)."""
    return client_address(request, request.app[DEPS].settings.webmail.trusted_proxies)


def _error(messages: list[str], status: int) -> web.Response:
    return web.json_response({"error": messages[0] if messages else "erreur",
                              "details": messages}, status=status)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else ""


def _stage(request: web.Request, stage: str) -> SessionInfo:
    session: SessionInfo | None = request.get(R_SESSION)
    if session is None or session.stage != stage:
        raise web.HTTPUnauthorized(text='{"error": "non authentifié"}',
                                   content_type="application/json")
    return session


async def first_connection(request: web.Request) -> web.StreamResponse:
    data = await json_body(request)
    try:
        account = await first_check(request.app, _client(request),
                                    _str(data, "code"), _str(data, "nir"), _str(data, "vitale"))
    except FlowError as exc:
        return _error(exc.messages, exc.status)
    session = await request.app[SESSIONS].create(account.id, "first")
    contact = await request.app[DEPS].directory.contact(account.id)
    return web.json_response({"token": session.token, "stage": "first",
                              "state": account.status,
                              "contact": {"email": contact.get("email", ""),
                                          "phone": contact.get("phone", "")}})


async def api_opposition(request: web.Request) -> web.StreamResponse:
    """``{"code","nir","vitale"}`` (no login): the patient opposes the opening of their pending
    account; no identifier or password is created."""
    data = await json_body(request)
    try:
        account = await first_check(request.app, _client(request), _str(data, "code"),
                                    _str(data, "nir"), _str(data, "vitale"), reopen=False)
        if account.status != "pending":
            raise FlowError(["Seule une messagerie en attente d'ouverture peut faire l'objet "
                             "d'une opposition."], 409)
        await oppose(request.app, account.id)
    except FlowError as exc:
        return _error(exc.messages, exc.status)
    return web.json_response({"state": "opposed"})


async def api_account(request: web.Request) -> web.StreamResponse:
    """The logged-in patient's account: state, since when, a deletion request if any
    (``{"requested_at","effective_at","done"}``; ``effective_at`` null until the space
    closes), and the history of transitions (the actor's kind only: agents' identifiers are
    internal)."""
    account = current_account(request)
    deps = request.app[DEPS]
    life = await deps.directory.lifecycle(account.id)
    deletion = await deps.closing.deletion_status(account.id) if deps.closing else None
    return web.json_response({
        "state": life.state.value, "since": life.since.isoformat(),
        "deletion": deletion_json(deletion),
        "history": [{"at": r.at.isoformat(), "event": r.event, "from": r.from_state,
                     "to": r.to_state, "actor": r.actor.partition(":")[0]}
                    for r in life.history]})


async def first_credentials(request: web.Request) -> web.StreamResponse:
    session = _stage(request, "first")
    data = await json_body(request)
    try:
        ident = await first_finish(request.app, session.account_id,
                                   identifier=_str(data, "identifier"),
                                   password=_str(data, "password"),
                                   password2=_str(data, "password"),
                                   email=_str(data, "email"), phone=_str(data, "phone"))
    except FlowError as exc:
        return _error(exc.messages, exc.status)
    await request.app[SESSIONS].destroy(session.token)
    return web.json_response({"identifier": ident})


async def api_login(request: web.Request) -> web.StreamResponse:
    data = await json_body(request)
    try:
        session = await login(request.app, _client(request),
                              _str(data, "identifier"), _str(data, "password"))
    except FlowError as exc:
        return _error(exc.messages, exc.status)
    return web.json_response({"token": session.token, "stage": "otp"})


async def api_otp(request: web.Request) -> web.StreamResponse:
    session = _stage(request, "otp")
    data = await json_body(request)
    try:
        active = await verify_otp(request.app, session, _str(data, "code"))
    except FlowError as exc:
        return _error(exc.messages, exc.status)
    return web.json_response({"token": active.token, "stage": "active",
                              "csrf": active.csrf})


async def api_session(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    return web.json_response({"address": account.address, "csrf": request.get(R_CSRF, "")})


async def api_logout(request: web.Request) -> web.StreamResponse:
    session: SessionInfo | None = request.get(R_SESSION)
    if session is not None:
        await request.app[SESSIONS].destroy(session.token)
    return web.json_response({"ok": True})


async def api_conversations(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    page = page_param(request)
    items, pages = await request.app[MAILBOX].conversations(
        account, query=request.query.get("q", "")[:100], page=page)
    return web.json_response({"page": min(page, pages), "pages": pages, "conversations": [
        {"id": c.id, "title": c.title, "correspondent": c.correspondent, "unread": c.unread,
         "messages": c.total, "updated_at": c.updated_at.isoformat(), "closed": c.closed}
        for c in items]})


async def api_conversation(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    cid = path_id(request, "cid")
    show_images = request.query.get("images") == "1"
    model = await conversation_view_model(request.app[MAILBOX], account, cid, show_images,
                                          page_param(request), client=_client(request))
    out = []
    for x in model["messages"]:
        r, m = x["r"], x["stored"]
        out.append({
            "id": m.id, "mine": x["mine"], "unread": x["unread"], "subject": r.subject,
            "from": r.from_name if not x["mine"] else "", "date": r.date.isoformat()
            if r.date else None, "html": r.html, "text": r.text,
            "blocked_images": r.blocked_images,
            "attachments": [{
                "index": a.index, "filename": a.filename, "content_type": a.content_type,
                "size": a.size, "filed_in": x["filings"].get(a.filename),
                "url": f"/api/conversations/{cid}/messages/{m.id}/attachments/{a.index}"}
                for a in r.attachments]})
    return web.json_response({"id": cid, "title": model["title"],
                              "correspondent": model["correspondent"],
                              "closed": model["conv"].closed, "can_reply": model["can_reply"],
                              "page": model["page"], "pages": model["pages"],
                              "total": model["total"], "messages": out})


def _json_uploads(data: dict[str, Any]) -> list[Upload]:
    out = []
    items = data.get("attachments", [])
    if not isinstance(items, list):
        raise web.HTTPBadRequest()
    for item in items:
        if not isinstance(item, dict):
            raise web.HTTPBadRequest()
        try:
            payload = base64.b64decode(_str(item, "data"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise web.HTTPBadRequest() from exc
        out.append(Upload(_str(item, "filename") or "fichier",
                          _str(item, "content_type") or "application/octet-stream", payload))
    return out


async def _body_and_uploads(request: web.Request) -> tuple[dict[str, str], list[Upload]]:
    if request.content_type == "multipart/form-data":
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}, uploads_of(form)
    data = await json_body(request)
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    if wants_synthesis(data.get("attach_synthesis")):
        fields["attach_synthesis"] = "true"
    return fields, _json_uploads(data)


async def api_reply(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    cid = path_id(request, "cid")
    fields, uploads = await _body_and_uploads(request)
    if wants_synthesis(fields.get("attach_synthesis")):
        uploads.append(await synthesis_upload(request, account))
    try:
        report = await request.app[MAILBOX].reply(account, cid, fields.get("body", ""), uploads)
    except ReplyRefused as exc:
        return _error([exc.text], exc.status)
    return web.json_response({"sent": True, "recipients": report.accepted}, status=201)


async def api_attachment(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    mailbox = request.app[MAILBOX]
    cid, mid = path_id(request, "cid"), path_id(request, "mid")
    idx = path_id(request, "idx", low=0)
    message = await mailbox.message(account, cid, mid) \
        if await mailbox.conversation(account, cid) else None
    found = part_bytes(await mailbox.read(message), idx) if message else None
    if found is None:
        raise web.HTTPNotFound()
    att, data = found
    response = attachment_response(data, att.filename, att.content_type, False)
    request[R_ATTACHMENT_CSP] = response.headers["Content-Security-Policy"]
    return response


async def api_pharmacies(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    return web.json_response({"pharmacies": [
        {"address": a, "name": n} for a, n in await request.app[MAILBOX].pharmacies(account)]})


async def api_new_message(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    fields, uploads = await _body_and_uploads(request)
    try:
        await request.app[MAILBOX].new_message(account, fields.get("to", ""),
                                               fields.get("subject", ""),
                                               fields.get("body", ""), uploads)
    except ReplyRefused as exc:
        return _error([exc.text], exc.status)
    return web.json_response({"sent": True}, status=201)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/first-connection", first_connection)
    r.add_post("/api/first-connection/credentials", first_credentials)
    r.add_post("/api/opposition", api_opposition)
    r.add_get("/api/account", api_account)
    r.add_post("/api/login", api_login)
    r.add_post("/api/otp", api_otp)
    r.add_get("/api/session", api_session)
    r.add_post("/api/logout", api_logout)
    r.add_get("/api/conversations", api_conversations)
    r.add_get("/api/conversations/{cid}", api_conversation)
    r.add_post("/api/conversations/{cid}/reply", api_reply)
    r.add_get("/api/conversations/{cid}/messages/{mid}/attachments/{idx}", api_attachment)
    r.add_get("/api/pharmacies", api_pharmacies)
    r.add_post("/api/messages", api_new_message)
