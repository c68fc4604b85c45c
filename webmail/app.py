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

import importlib
import importlib.util
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound
from mailserver.mailer import Mailer
from webmail.clientaddr import is_https
from webmail.mailbox import Mailbox
from webmail.sessions import RateLimiter, SessionInfo, Sessions

__all__ = ["make_app", "start_http", "render", "SERVICES", "SESSIONS", "LIMITER", "MAILER",
           "MAILBOX", "SESSION_COOKIE", "CSRF_COOKIE", "set_session_cookie", "CSP",
           "current_account", "MAX_REQUEST", "see_other", "SERVER_HEADER", "EXPIRED_VIEWS"]

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
SESSIONS = web.AppKey("sessions", Sessions)
LIMITER = web.AppKey("limiter", RateLimiter)
MAILER = web.AppKey("mailer", Mailer)
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
_HERE = Path(__file__).parent
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_CSRF_EXEMPT = frozenset({"/autodiscover/autodiscover.xml"})  # compared in lower case

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXPIRED_VIEWS: web.AppKey[dict[str, Handler]] = web.AppKey("expired_views")
"""Route (canonical path) → the view answering a form posted without a live login."""

ERROR_TEXT = {
    400: "La demande est incomplète ou mal formée.",
    403: "Cette action n'est pas autorisée. Si vous venez d'un formulaire, rechargez la page "
         "et recommencez.",
    404: "Cette page n'existe pas, ou vous n'y avez pas accès.",
    405: "Cette action n'est pas autorisée ici.",
    413: "Les fichiers envoyés sont trop volumineux.",
    429: "Trop de tentatives. Patientez quelques minutes avant de réessayer.",
}


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
    secure = request.app[SERVICES].config.webmail.secure_cookies
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
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    # RFC 6797 7.2: HSTS only in responses sent over HTTPS (or by a trusted TLS proxy).
    if is_https(request, request.app[SERVICES].config.webmail.trusted_proxies):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    pre = request.get(R_NEW_CSRF_COOKIE)
    if pre and not response.prepared:
        response.set_cookie(CSRF_COOKIE, pre, httponly=True, samesite="Strict", path="/",
                            secure=request.app[SERVICES].config.webmail.secure_cookies)
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
            account = await request.app[SERVICES].directory.get(session.account_id)
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


def make_app(services: Services) -> web.Application:
    """The webmail application (also used by aiohttp's test client)."""
    app = web.Application(middlewares=[headers_middleware, session_middleware,
                                       csrf_middleware], client_max_size=MAX_REQUEST)
    app[SERVICES] = services
    app[SESSIONS] = Sessions(services.db, services.config.webmail.session_idle_seconds)
    app[LIMITER] = RateLimiter(services.db)
    app[MAILER] = Mailer(services.config)
    app[MAILBOX] = Mailbox(services)
    app[EXPIRED_VIEWS] = {}
    app[JINJA] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    app[JINJA].filters["taille"] = _human_size
    app[JINJA].filters["date_fr"] = _date_fr
    from webmail import api, auth_views, mail_views

    auth_views.setup(app)
    mail_views.setup(app)
    api.setup(app)
    app.router.add_static("/static/", _HERE / "static", append_version=False)
    if importlib.util.find_spec("webmail.autoconfig") is not None:
        autoconfig = importlib.import_module("webmail.autoconfig")
        autoconfig.setup_autoconfig(app, services.config)
    app.on_response_prepare.append(_neutral_server_header)
    app.cleanup_ctx.append(_cleanup)
    return app


async def start_http(services: Services, host: str, port: int
                     ) -> tuple[web.AppRunner, tuple[str, int]]:
    """Serve the webmail on ``host:port`` (0 = ephemeral); returns the runner and the bound
    address."""
    runner = web.AppRunner(make_app(services), access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes no public bound-port accessor
    assert server is not None and hasattr(server, "sockets")
    sock = server.sockets[0].getsockname()
    return runner, (sock[0], sock[1])


def _plain(exc: web.HTTPException) -> web.Response:
    """A plain response equivalent to ``exc`` (redirects, JSON errors)."""
    hdrs = {k: v for k, v in exc.headers.items()
            if k.lower() not in ("content-length", "content-type")}
    response = web.Response(status=exc.status, headers=hdrs, body=exc.body,
                            content_type=exc.content_type if exc.body else None)
    for name, morsel in exc.cookies.items():
        response.cookies[name] = morsel
    return response


def see_other(location: str) -> web.Response:
    """A 303 redirect to a local path (after a POST: RFC 9110 15.4.4)."""
    return web.Response(status=303, headers={"Location": location})


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
    from zoneinfo import ZoneInfo

    local = dt.astimezone(ZoneInfo("Europe/Paris"))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} à {local:%H:%M}"
