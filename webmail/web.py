"""Application keys, request keys and helpers shared by the webmail's views.

The views (``auth_views``, ``mail_views``, ``api``) and the journeys (``flows``) import this
module; :mod:`webmail.app` imports the views and builds the application. Nothing here imports
a view, so there is no cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web

from mailserver.directory.service import AccountInfo
from webmail.deps import PersonalMailer, WebmailDeps
from webmail.mailbox import Mailbox
from webmail.sessions import RateLimiter, SessionInfo, Sessions

__all__ = ["DEPS", "SESSIONS", "LIMITER", "MAILER", "MAILBOX", "JINJA", "EXPIRED_VIEWS",
           "R_SESSION", "R_ACCOUNT", "R_CSRF", "R_BEARER", "R_NEW_CSRF_COOKIE", "R_SHOW_IMAGES",
           "R_ATTACHMENT_CSP", "SESSION_COOKIE", "CSRF_COOKIE", "MAX_REQUEST", "SERVER_HEADER",
           "CSP", "Handler", "render", "set_session_cookie", "current_account", "see_other",
           "json_body"]

DEPS = web.AppKey("deps", WebmailDeps)
SESSIONS = web.AppKey("sessions", Sessions)
LIMITER = web.AppKey("limiter", RateLimiter)
MAILER: web.AppKey[PersonalMailer] = web.AppKey("mailer")
MAILBOX = web.AppKey("mailbox", Mailbox)
JINJA = web.AppKey("jinja", jinja2.Environment)

R_SESSION = web.RequestKey("session", object)  # SessionInfo | None
R_ACCOUNT = web.RequestKey("account", object)  # AccountInfo | None
R_CSRF = web.RequestKey("csrf", object)  # str
R_BEARER = web.RequestKey("via_bearer", object)  # bool
R_NEW_CSRF_COOKIE = web.RequestKey("set_csrf_cookie", object)  # str
R_SHOW_IMAGES = web.RequestKey("show_images", object)  # bool
R_ATTACHMENT_CSP = web.RequestKey("attachment_csp", object)  # str

SESSION_COOKIE = "mss_session"
CSRF_COOKIE = "mss_csrf"
MAX_REQUEST = 26 * 1000 * 1000
SERVER_HEADER = "webmail"
CSP = ("default-src 'self'; img-src 'self' data:{extra}; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXPIRED_VIEWS: web.AppKey[dict[str, Handler]] = web.AppKey("expired_views")
"""Route (canonical path) → the view answering a form posted without a live login."""


def render(request: web.Request, template: str, context: dict[str, Any] | None = None, *,
           status: int = 200) -> web.Response:
    """Render a Jinja2 template (autoescaped) with the common context."""
    env = request.app[JINJA]
    session: SessionInfo | None = request.get(R_SESSION)
    account: AccountInfo | None = request.get(R_ACCOUNT)
    ctx = {"csrf": request.get(R_CSRF, ""), "logged_in": bool(
        session and session.stage == "active"), "request_path": request.path,
        "my_address": account.address if account is not None else ""}
    ctx.update(context or {})
    return web.Response(text=env.get_template(template).render(**ctx), status=status,
                        content_type="text/html", charset="utf-8")


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    secure = request.app[DEPS].settings.webmail.secure_cookies
    response.set_cookie(SESSION_COOKIE, token, httponly=True, secure=secure,
                        samesite="Strict", path="/")


def current_account(request: web.Request) -> AccountInfo:
    """The logged-in patient; raises 401/redirect if none."""
    account: AccountInfo | None = request.get(R_ACCOUNT)
    if account is None:
        if request.path.startswith("/api/"):
            raise web.HTTPUnauthorized(text='{"error": "non authentifié"}',
                                       content_type="application/json")
        raise web.HTTPSeeOther("/connexion")
    return account


def see_other(location: str) -> web.Response:
    """A 303 redirect to a local path (after a POST: RFC 9110 15.4.4)."""
    return web.Response(status=303, headers={"Location": location})


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (415 if not JSON, 400 if malformed or not an object)."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType()
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest() from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest()
    return data
