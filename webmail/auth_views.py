"""HTML views of the authentication journeys (French, work without JavaScript)."""

from __future__ import annotations

from aiohttp import web

from mailserver.lifecycle import PARIS
from webmail.clientaddr import client_address
from webmail.flows import (
    FlowError,
    first_check,
    first_finish,
    login,
    oppose,
    request_reset,
    reset_account,
    reset_password,
    verify_otp,
)
from webmail.sessions import SessionInfo
from webmail.web import (
    CSRF_COOKIE,
    DEPS,
    R_ACCOUNT,
    R_SESSION,
    SESSION_COOKIE,
    SESSIONS,
    render,
    see_other,
    set_session_cookie,
)

__all__ = ["setup", "INFO_TEXT"]

INFO_TEXT = {
    "bienvenue": "Votre messagerie est prête. Connectez-vous avec l'identifiant et le mot de "
                 "passe que vous venez de choisir.",
    "deconnecte": "Vous êtes déconnecté(e).",
    "expire": "Votre session a expiré. Connectez-vous à nouveau.",
    "mot-de-passe": "Votre mot de passe a été changé. Connectez-vous.",
}


def _client(request: web.Request) -> str:
    return client_address(request, request.app[DEPS].settings.webmail.trusted_proxies)


def _base_url(request: web.Request) -> str:
    configured = request.app[DEPS].settings.webmail.base_url
    return configured or str(request.url.origin())


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _session(request: web.Request, stage: str) -> SessionInfo | None:
    session: SessionInfo | None = request.get(R_SESSION)
    return session if session is not None and session.stage == stage else None


async def index(request: web.Request) -> web.StreamResponse:
    if request.get(R_ACCOUNT) is not None:
        raise web.HTTPSeeOther("/conversations")
    raise web.HTTPSeeOther("/connexion")


# -- first connection ---------------------------------------------------------------------

async def first_get(request: web.Request) -> web.StreamResponse:
    return render(request, "first.html", {"errors": [], "form": {}})


async def first_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    try:
        account = await first_check(request.app, _client(request), form.get("code", ""),
                                    form.get("nir", ""), form.get("vitale", ""))
    except FlowError as exc:
        keep = {"nir": form.get("nir", ""), "vitale": form.get("vitale", "")}
        return render(request, "first.html", {"errors": exc.messages, "form": keep},
                      status=exc.status)
    old: SessionInfo | None = request.get(R_SESSION)
    if old is not None:
        await request.app[SESSIONS].destroy(old.token)
    session = await request.app[SESSIONS].create(account.id, "first")
    choose = account.status in ("pending", "opposed")
    response = see_other("/premiere-connexion/choix" if choose
                         else "/premiere-connexion/identifiants")
    set_session_cookie(request, response, session.token)
    return response


async def _first_account_status(request: web.Request) -> tuple[SessionInfo, str]:
    session = _session(request, "first")
    if session is None:
        raise web.HTTPSeeOther("/premiere-connexion")
    account = await request.app[DEPS].directory.get(session.account_id)
    return session, account.status


async def choice_get(request: web.Request) -> web.StreamResponse:
    """Pending (or opposed) account: activate now, or oppose (pending only)."""
    session, status = await _first_account_status(request)
    if status not in ("pending", "opposed"):
        raise web.HTTPSeeOther("/premiere-connexion/identifiants")
    life = await request.app[DEPS].directory.lifecycle(session.account_id)
    opens = life.opens_at.astimezone(PARIS).strftime("%d/%m/%Y") if life.opens_at else ""
    return render(request, "choice.html", {"errors": [], "pending": status == "pending",
                                           "opens": opens})


async def opposition_get(request: web.Request) -> web.StreamResponse:
    _session_info, status = await _first_account_status(request)
    if status != "pending":
        raise web.HTTPSeeOther("/premiere-connexion/choix")
    return render(request, "opposition.html", {"errors": [], "done": False})


async def opposition_post(request: web.Request) -> web.StreamResponse:
    session, _status = await _first_account_status(request)
    try:
        await oppose(request.app, session.account_id)
    except FlowError as exc:
        return render(request, "opposition.html", {"errors": exc.messages, "done": False},
                      status=exc.status)
    await request.app[SESSIONS].destroy(session.token)
    response = render(request, "opposition.html", {"errors": [], "done": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def credentials_get(request: web.Request) -> web.StreamResponse:
    session = _session(request, "first")
    if session is None:
        raise web.HTTPSeeOther("/premiere-connexion")
    contact = await request.app[DEPS].directory.contact(session.account_id)
    return render(request, "credentials.html", {"errors": [], "form": {
        "email": contact.get("email", ""), "phone": contact.get("phone", "")}})


async def credentials_post(request: web.Request) -> web.StreamResponse:
    session = _session(request, "first")
    if session is None:
        raise web.HTTPSeeOther("/premiere-connexion")
    form = await _form(request)
    try:
        await first_finish(request.app, session.account_id,
                           identifier=form.get("identifier", ""),
                           password=form.get("password", ""),
                           password2=form.get("password2", ""),
                           email=form.get("email", ""), phone=form.get("phone", ""))
    except FlowError as exc:
        if exc.restart:
            await request.app[SESSIONS].destroy(session.token)
            raise web.HTTPSeeOther("/connexion") from exc
        keep = {k: form.get(k, "") for k in ("identifier", "email", "phone")}
        return render(request, "credentials.html", {"errors": exc.messages, "form": keep},
                      status=exc.status)
    await request.app[SESSIONS].destroy(session.token)
    response = see_other("/connexion?info=bienvenue")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- login ----------------------------------------------------------------------------------

async def login_get(request: web.Request) -> web.StreamResponse:
    if request.get(R_ACCOUNT) is not None:
        raise web.HTTPSeeOther("/conversations")
    info = INFO_TEXT.get(request.query.get("info", ""), "")
    return render(request, "login.html", {"errors": [], "info": info, "form": {}})


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    try:
        session = await login(request.app, _client(request), form.get("identifier", ""),
                              form.get("password", ""))
    except FlowError as exc:
        return render(request, "login.html", {
            "errors": exc.messages, "info": "",
            "form": {"identifier": form.get("identifier", "")}}, status=exc.status)
    old: SessionInfo | None = request.get(R_SESSION)
    if old is not None:
        await request.app[SESSIONS].destroy(old.token)
    response = see_other("/connexion/code")
    set_session_cookie(request, response, session.token)
    return response


async def otp_get(request: web.Request) -> web.StreamResponse:
    if _session(request, "otp") is None:
        raise web.HTTPSeeOther("/connexion?info=expire")
    return render(request, "otp.html", {"errors": []})


async def otp_post(request: web.Request) -> web.StreamResponse:
    session = _session(request, "otp")
    if session is None:
        raise web.HTTPSeeOther("/connexion?info=expire")
    form = await _form(request)
    try:
        active = await verify_otp(request.app, session, form.get("code", ""))
    except FlowError as exc:
        if exc.restart:
            return render(request, "login.html", {"errors": exc.messages, "info": "",
                                                  "form": {}}, status=exc.status)
        return render(request, "otp.html", {"errors": exc.messages}, status=exc.status)
    response = see_other("/conversations")
    set_session_cookie(request, response, active.token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session: SessionInfo | None = request.get(R_SESSION)
    if session is not None:
        await request.app[SESSIONS].destroy(session.token)
    response = see_other("/connexion?info=deconnecte")
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


# -- password reset -------------------------------------------------------------------------

async def forgot_get(request: web.Request) -> web.StreamResponse:
    return render(request, "forgot.html", {"errors": [], "sent": False})


async def forgot_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    try:
        await request_reset(request.app, _client(request), form.get("identifier", ""),
                            _base_url(request))
    except FlowError as exc:
        return render(request, "forgot.html", {"errors": exc.messages, "sent": False},
                      status=exc.status)
    return render(request, "forgot.html", {"errors": [], "sent": True})


async def reset_get(request: web.Request) -> web.StreamResponse:
    if await reset_account(request.app, request.match_info["token"]) is None:
        return render(request, "reset.html", {"errors": [
            "Ce lien a expiré ou a déjà servi. Faites une nouvelle demande."],
            "valid": False}, status=410)
    return render(request, "reset.html", {"errors": [], "valid": True})


async def reset_post(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    try:
        await reset_password(request.app, request.match_info["token"],
                             form.get("password", ""), form.get("password2", ""))
    except FlowError as exc:
        return render(request, "reset.html", {"errors": exc.messages,
                                              "valid": not exc.restart}, status=exc.status)
    raise web.HTTPSeeOther("/connexion?info=mot-de-passe")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    r.add_get("/premiere-connexion", first_get)
    r.add_post("/premiere-connexion", first_post)
    r.add_get("/premiere-connexion/choix", choice_get)
    r.add_get("/premiere-connexion/opposition", opposition_get)
    r.add_post("/premiere-connexion/opposition", opposition_post)
    r.add_get("/premiere-connexion/identifiants", credentials_get)
    r.add_post("/premiere-connexion/identifiants", credentials_post)
    r.add_get("/connexion", login_get)
    r.add_post("/connexion", login_post)
    r.add_get("/connexion/code", otp_get)
    r.add_post("/connexion/code", otp_post)
    r.add_post("/deconnexion", logout)
    r.add_get("/mot-de-passe-oublie", forgot_get)
    r.add_post("/mot-de-passe-oublie", forgot_post)
    r.add_get("/reinitialiser/{token}", reset_get)
    r.add_post("/reinitialiser/{token}", reset_post)
