"""The patient webmail: aiohttp application factory, middlewares and the HTTP listener.

Theory of operation
-------------------
Requests pass three middlewares, outermost first:

1. ``headers``: every response (errors included) gets the security headers: a CSP without
   ``unsafe-inline`` (``frame-ancestors 'none'``, ``form-action 'self'``, ``base-uri 'none'``),
   ``Referrer-Policy: no-referrer``, ``X-Content-Type-Options: nosniff``, no caching of
   pages, HSTS only when the request came over HTTPS (directly or from a trusted proxy
   saying ``X-Forwarded-Proto: https``); HTTP errors become French pages (or JSON under
   ``/api/``). A signal replaces aiohttp's ``Server`` header (which names Python and aiohttp
   versions) by a neutral one.
2. ``session``: the session token comes from the ``mss_session`` cookie or from
   ``Authorization: Bearer`` (API clients); the live session and its account are attached to
   the request.
3. ``csrf``: every state-changing request must carry the session's CSRF token (form field
   ``csrf`` or header ``X-CSRF-Token``). Before login, the token is a double-submit cookie.
   Bearer-authenticated API calls and JSON logins are exempt: browsers never attach those
   credentials on their own, which is what CSRF abuses. So is Outlook's autodiscover POST: it
   takes no session and changes nothing (it only describes the mail listeners).
   A form posted after the session ended (typically a reply typed for longer than
   ``session_idle_seconds``) cannot carry a valid token any more: routes that registered an
   "expired" view in ``EXPIRED_VIEWS`` get it instead of a bare 403. Such a view changes
   nothing; it gives the typed text back and asks the patient to log in again.

Views live in ``auth_views.py`` (first connection, login, one-time code, reset),
``mail_views.py`` (conversations) and ``api.py`` (JSON for a future mobile app).
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from mailserver.errors import NotFound
from webmail import (
    api,
    auth_views,
    closing_views,
    documents_api,
    documents_views,
    export_views,
    mail_views,
    prepared_views,
    profile_api,
    profile_charts,
    profile_synthesis,
    profile_views,
    settings_views,
)
from webmail.autoconfig import setup_autoconfig
from webmail.clientaddr import is_https
from webmail.deps import WebmailDeps
from webmail.mailbox import Mailbox
from webmail.sessions import RateLimiter, Sessions
from webmail.timing import timing_middleware
from webmail.web import (
    CSP,
    CSRF_COOKIE,
    DEPS,
    EXPIRED_VIEWS,
    JINJA,
    LIMITER,
    MAILBOX,
    MAILER,
    MAX_REQUEST,
    R_ACCOUNT,
    R_ATTACHMENT_CSP,
    R_BEARER,
    R_CSRF,
    R_NEW_CSRF_COOKIE,
    R_SESSION,
    R_SHOW_IMAGES,
    SERVER_HEADER,
    SESSION_COOKIE,
    SESSIONS,
    Handler,
    render,
)

__all__ = ["make_app", "start_http", "SESSION_COOKIE", "CSRF_COOKIE"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_CSRF_EXEMPT = frozenset({"/autodiscover/autodiscover.xml"})  # compared in lower case

Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

ERROR_TEXT = {
    400: "La demande est incomplète ou mal formée.",
    403: "Cette action n'est pas autorisée. Si vous venez d'un formulaire, rechargez la page "
         "et recommencez.",
    404: "Cette page n'existe pas, ou vous n'y avez pas accès.",
    405: "Cette action n'est pas autorisée ici.",
    413: "Les fichiers envoyés sont trop volumineux.",
    429: "Trop de tentatives. Patientez quelques minutes avant de réessayer.",
}


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or (request.path.startswith("/api/")
                                and exc.content_type == "application/json"):
            response = _plain(exc)
        elif request.path.startswith("/api/"):
            response = web.json_response(
                {"error": ERROR_TEXT.get(exc.status, "Erreur.")}, status=exc.status)
        else:
            response = render(request, "error.html", {
                "status": exc.status, "message": ERROR_TEXT.get(exc.status, "Erreur.")},
                status=exc.status)
    except Exception:
        log.exception("webmail: server error on %s", request.method)
        response = render(request, "error.html", {
            "status": 500, "message": "Une erreur est survenue de notre côté. Réessayez "
                                      "dans un instant."}, status=500)
    extra = " https:" if request.get(R_SHOW_IMAGES) else ""
    response.headers["Content-Security-Policy"] = request.get(
        R_ATTACHMENT_CSP) or CSP.format(extra=extra)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    framed = "frame-ancestors 'self'" in response.headers.get("Content-Security-Policy", "")
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if framed else "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    # RFC 6797 7.2: HSTS only in responses sent over HTTPS (or by a trusted TLS proxy).
    if is_https(request, request.app[DEPS].settings.webmail.trusted_proxies):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    pre = request.get(R_NEW_CSRF_COOKIE)
    if pre and not response.prepared:
        response.set_cookie(CSRF_COOKIE, pre, httponly=True, samesite="Strict", path="/",
                            secure=request.app[DEPS].settings.webmail.secure_cookies)
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    auth = request.headers.get("Authorization", "")
    request[R_BEARER] = False
    if request.path.startswith("/api/") and auth.lower().startswith("bearer "):
        token = auth[7:].strip()
        request[R_BEARER] = True
    session = await request.app[SESSIONS].load(token) if token else None
    request[R_SESSION] = session
    request[R_ACCOUNT] = None
    if session is not None and session.stage == "active":
        try:
            account = await request.app[DEPS].directory.get(session.account_id)
        except NotFound:
            account = None
        if account is not None and account.is_patient and account.status == "open":
            request[R_ACCOUNT] = account
    if session is not None:
        request[R_CSRF] = session.csrf
    else:
        pre = request.cookies.get(CSRF_COOKIE, "")
        if len(pre) < 20:
            pre = secrets.token_urlsafe(24)
            request[R_NEW_CSRF_COOKIE] = pre
        request[R_CSRF] = pre
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _SAFE_METHODS or request[R_BEARER] \
            or request.path.lower() in _CSRF_EXEMPT:
        return await handler(request)
    is_api = request.path.startswith("/api/")
    resource = request.match_info.route.resource
    expired = request.app[EXPIRED_VIEWS].get(resource.canonical) if resource else None
    if expired is not None and request.get(R_ACCOUNT) is None and not request[R_BEARER]:
        return await expired(request)  # no login, so nothing to forge: see the docstring
    if is_api and request[R_SESSION] is None and request.content_type == "application/json" \
            and SESSION_COOKIE not in request.cookies:
        # A JSON call without any ambient credential (API login): nothing to forge.
        return await handler(request)
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and not is_api and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        sent = str(form.get("csrf", ""))
    expected = request.get(R_CSRF, "")
    if request[R_SESSION] is None and request.get(R_NEW_CSRF_COOKIE):
        expected = ""  # the double-submit cookie was missing: nothing to compare with
    if not expected or not sent or not secrets.compare_digest(sent, expected):
        log.info("webmail: csrf refused")
        raise web.HTTPForbidden()
    return await handler(request)


async def _neutral_server_header(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp would announce "Python/3.x aiohttp/3.y": no versions for scanners to match.
    response.headers["Server"] = SERVER_HEADER


async def _cleanup(app: web.Application) -> Any:
    yield
    # Nothing long-running is owned by the app; sessions expire lazily.


def _own(middleware: Middleware) -> Any:
    """``middleware`` for the webmail's own routes only: mounted applications (``start_http``
    ``mounts``) answer for themselves."""
    @web.middleware
    async def own(request: web.Request, handler: Handler) -> web.StreamResponse:
        if len(request.match_info.apps) > 1:
            return await handler(request)
        return await middleware(request, handler)

    return own


def make_app(deps: WebmailDeps) -> web.Application:
    """The webmail application (also used by aiohttp's test client)."""
    app = web.Application(middlewares=[timing_middleware, _own(headers_middleware),
                                       _own(session_middleware), _own(csrf_middleware)],
                          client_max_size=MAX_REQUEST)
    app[DEPS] = deps
    app[SESSIONS] = Sessions(deps.webstore, deps.settings.webmail.session_idle_seconds)
    app[LIMITER] = RateLimiter(deps.webstore)
    app[MAILER] = deps.mailer
    app[MAILBOX] = Mailbox(deps)
    app[EXPIRED_VIEWS] = {}
    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    app[JINJA].filters["taille"] = _human_size
    app[JINJA].filters["date_fr"] = _date_fr
    app[JINJA].filters["day_fr"] = _day_fr
    auth_views.setup(app)
    mail_views.setup(app)
    api.setup(app)
    closing_views.setup(app)
    documents_views.setup(app)
    documents_api.setup(app)
    profile_views.setup(app)
    profile_api.setup(app)
    settings_views.setup(app)
    export_views.setup(app)
    prepared_views.setup(app)
    profile_synthesis.setup(app)
    profile_charts.setup(app)
    app.router.add_static("/static/", _HERE / "static", append_version=False)
    setup_autoconfig(app, deps.settings)
    app.on_response_prepare.append(_neutral_server_header)
    app.cleanup_ctx.append(_cleanup)
    return app


async def start_http(deps: WebmailDeps, host: str, port: int, *,
                     mounts: Mapping[str, web.Application] | None = None,
                     sock: socket.socket | None = None
                     ) -> tuple[web.AppRunner, tuple[str, int]]:
    """Serve the webmail on ``host:port`` (0 = ephemeral); returns the runner and the bound
    address. ``mounts`` are other applications served beside it (prefix -> app, e.g. the
    FHIR API at ``/fhir``): the webmail's middlewares leave their requests alone."""
    app = make_app(deps)
    for prefix, sub in (mounts or {}).items():
        app.add_subapp(prefix, sub)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    site: web.BaseSite = (web.SockSite(runner, sock) if sock is not None
                          else web.TCPSite(runner, host, port))
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes no public bound-port accessor
    assert server is not None and hasattr(server, "sockets")
    name = server.sockets[0].getsockname()
    return runner, (name[0], name[1])


def _plain(exc: web.HTTPException) -> web.Response:
    """A plain response equivalent to ``exc`` (redirects, JSON errors)."""
    hdrs = {k: v for k, v in exc.headers.items()
            if k.lower() not in ("content-length", "content-type")}
    response = web.Response(status=exc.status, headers=hdrs, body=exc.body,
                            content_type=exc.content_type if exc.body else None)
    for name, morsel in exc.cookies.items():
        response.cookies[name] = morsel
    return response


def _human_size(n: int) -> str:
    if n < 1000:
        return f"{n} o"
    if n < 1000 * 1000:
        return f"{n / 1000:.0f} Ko"
    return f"{n / 1000 / 1000:.1f} Mo".replace(".", ",")


_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")


def _date_fr(dt: Any) -> str:
    if dt is None:
        return ""
    local = dt.astimezone(ZoneInfo("Europe/Paris"))
    return f"{_day_fr(local)} à {local:%H:%M}"


def _day_fr(dt: Any) -> str:
    """The day only (a document's date is a day: a time would be the storage's midnight)."""
    if dt is None:
        return ""
    local = dt.astimezone(ZoneInfo("Europe/Paris"))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"
