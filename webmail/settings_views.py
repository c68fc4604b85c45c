""""Paramètres": contacts (email with confirmation by code, phone), password, and the ways to
the export and to closing the space. Journeys in :mod:`webmail.settings_flows`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from mailserver.directory.service import AccountInfo
from webmail.clientaddr import client_address
from webmail.settings_flows import (
    SettingsError,
    cancel_email,
    change_contacts,
    change_password,
    confirm_email,
)
from webmail.web import DEPS, SESSIONS, current_account, render, see_other, set_session_cookie

__all__ = ["setup", "NOTICES"]

NOTICES = {
    "mot-de-passe": "Votre mot de passe a été changé. Vos autres sessions ont été fermées.",
    "telephone": "Votre numéro de téléphone a été enregistré.",
    "code-envoye": "Un code vous a été envoyé à la nouvelle adresse. Saisissez-le ci-dessous "
                   "pour confirmer le changement.",
    "adresse": "Votre nouvelle adresse de contact est enregistrée.",
    "annule": "Le changement d'adresse a été annulé.",
}


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def _page(request: web.Request, account: AccountInfo, *, section: str = "",
                errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                status: int = 200) -> web.Response:
    deps = request.app[DEPS]
    contact = await deps.directory.contact(account.id)
    pending = await deps.webstore.pending_email(account.id, datetime.now(UTC))
    values = {"email": contact.get("email", ""), "phone": contact.get("phone", "")}
    if section == "contact" and form:
        values = {"email": form.get("email", ""), "phone": form.get("phone", "")}
    ctx: dict[str, Any] = {
        "contact": values, "pending": pending, "section": section, "field_errors": errors or {},
        "notice": NOTICES.get(request.query.get("info", ""), ""),
        "export": deps.export is not None}
    return render(request, "parametres.html", ctx, status=status)


def _client(request: web.Request) -> str:
    return client_address(request, request.app[DEPS].settings.webmail.trusted_proxies)


async def settings_get(request: web.Request) -> web.StreamResponse:
    return await _page(request, current_account(request))


async def password_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    form = await _form(request)
    try:
        await change_password(request.app, account, _client(request),
                              current=form.get("current", ""),
                              password=form.get("password", ""),
                              password2=form.get("password2", ""))
    except SettingsError as exc:
        return await _page(request, account, section="password", errors=exc.fields,
                           status=exc.status)
    session = await request.app[SESSIONS].create(account.id, "active")
    response = see_other("/parametres?info=mot-de-passe")
    set_session_cookie(request, response, session.token)
    return response


async def contacts_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    form = await _form(request)
    try:
        _phone, new_email = await change_contacts(
            request.app, account, _client(request), current=form.get("current", ""),
            email=form.get("email", ""), phone=form.get("phone", ""))
    except SettingsError as exc:
        return await _page(request, account, section="contact", errors=exc.fields,
                           form=form, status=exc.status)
    return see_other("/parametres?info=" + ("code-envoye" if new_email else "telephone")
                     + ("#confirmer-adresse" if new_email else ""))


async def confirm_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    form = await _form(request)
    try:
        await confirm_email(request.app, account, form.get("code", ""))
    except SettingsError as exc:
        return await _page(request, account, section="confirm", errors=exc.fields,
                           status=exc.status)
    return see_other("/parametres?info=adresse")


async def cancel_post(request: web.Request) -> web.StreamResponse:
    await cancel_email(request.app, current_account(request))
    return see_other("/parametres?info=annule")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/parametres", settings_get)
    r.add_post("/parametres/mot-de-passe", password_post)
    r.add_post("/parametres/coordonnees", contacts_post)
    r.add_post("/parametres/coordonnees/confirmer", confirm_post)
    r.add_post("/parametres/coordonnees/annuler", cancel_post)
