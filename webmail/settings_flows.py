""""Paramètres" journeys shared by the pages (and usable by the API): change the password,
change the contact phone, change the contact email (effective only once the patient types the
code mailed to the new address). French messages, each tied to the form field it is about.

Every change asks for the current password again: a session left open on a shared computer
must not be enough to take the account over (the new email would receive the next reset
link). The current password is checked by the directory, so wrong ones count toward its
lockout like failed logins.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from mailserver.directory.service import AccountInfo
from mailserver.errors import AuthError
from mailserver.mailer import PersonalMail
from mailserver.store.audit import Channel
from webmail.flows import valid_email, valid_phone
from webmail.passwords import password_problems
from webmail.web import DEPS, MAILER, SESSIONS

__all__ = ["SettingsError", "change_password", "change_contacts", "confirm_email",
           "cancel_email", "EMAIL_CODE_VALIDITY", "EMAIL_CODE_ATTEMPTS"]

EMAIL_CODE_VALIDITY = timedelta(minutes=30)
EMAIL_CODE_ATTEMPTS = 5
_WRONG_CURRENT = "Le mot de passe actuel est incorrect."
_LOCKED = "Trop de tentatives : patientez quelques minutes avant de réessayer."


@dataclass
class SettingsError(Exception):
    """A change refused: field name → French message."""

    fields: dict[str, str] = field(default_factory=dict)
    status: int = 400


async def _check_current(app: web.Application, account: AccountInfo, client: str,
                         password: str) -> None:
    deps = app[DEPS]
    login_id = await deps.queries.login_id(account.id) or ""
    if not password or not login_id:
        raise SettingsError({"current": "Saisissez votre mot de passe actuel."})
    try:
        await deps.directory.authenticate(login_id, password, client=client,
                                          allow_patients=True, channel=Channel.WEBMAIL,
                                          mechanism="password-confirm")
    except AuthError as exc:
        if exc.locked:
            raise SettingsError({"current": _LOCKED}, 429) from exc
        raise SettingsError({"current": _WRONG_CURRENT}, 403) from exc


async def _notify(app: web.Application, account_id: int, subject: str, text: str,
                  to: str | None = None) -> None:
    address = to or (await app[DEPS].directory.contact(account_id)).get("email", "")
    if address:
        await app[MAILER].send(PersonalMail(address, subject, f"Bonjour,\n\n{text}\n\nSi vous "
                                            "n'êtes pas à l'origine de ce changement, "
                                            "contactez l'assistance au plus vite.\n"))


async def change_password(app: web.Application, account: AccountInfo, client: str, *,
                          current: str, password: str, password2: str) -> None:
    """Set a new password (Argon2, by the directory); every session of the account ends
    (the caller opens a new one for the patient's browser)."""
    deps = app[DEPS]
    login_id = await deps.queries.login_id(account.id) or ""
    errors: dict[str, str] = {}
    if not current:
        errors["current"] = "Saisissez votre mot de passe actuel."
    problems = password_problems(password, identifier=login_id, nir=account.ins or "")
    if password and password == current:
        problems.append("Choisissez un mot de passe différent de l'actuel.")
    if problems:
        errors["password"] = " ".join(problems)
    if password != password2:
        errors["password2"] = "Les deux mots de passe saisis sont différents."
    if errors:
        raise SettingsError(errors)
    await _check_current(app, account, client, current)
    await deps.directory.set_password(account.id, password)
    await app[SESSIONS].destroy_all(account.id)
    await _notify(app, account.id, "Votre mot de passe a été changé",
                  "Le mot de passe de votre messagerie santé vient d'être changé.")


async def change_contacts(app: web.Application, account: AccountInfo, client: str, *,
                          current: str, email: str, phone: str) -> tuple[bool, str | None]:
    """Apply a change of phone at once; for a new email, mail a code to it. Returns (phone
    changed, the new email waiting for its code or None)."""
    deps = app[DEPS]
    contact = await deps.directory.contact(account.id)
    email, phone = email.strip(), re.sub(r"[\s.-]", "", phone)
    new_email = email if email.lower() != contact.get("email", "").lower() else None
    phone_changed = phone != contact.get("phone", "")
    errors: dict[str, str] = {}
    if new_email is not None and not valid_email(email):
        errors["email"] = "L'adresse électronique n'est pas valide (exemple : nom@exemple.fr)."
    if phone and not valid_phone(phone):
        errors["phone"] = ("Le numéro de téléphone doit être au format 06 12 34 56 78 ou "
                           "+33 6 12 34 56 78.")
    if not errors and new_email is None and not phone_changed:
        errors["email"] = "Vous n'avez rien modifié."
    if errors:
        raise SettingsError(errors)
    await _check_current(app, account, client, current)
    if phone_changed:
        updated = {k: v for k, v in contact.items() if k != "phone"}
        if phone:
            updated["phone"] = phone
        await deps.directory.set_contact(account.id, updated)
        await _notify(app, account.id, "Votre numéro de téléphone a été changé",
                      "Le numéro de téléphone de contact de votre messagerie santé a été "
                      "changé.")
    if new_email is not None:
        code = f"{secrets.randbelow(1_000_000):06d}"
        await deps.webstore.put_email_change(account.id, new_email, code,
                                             datetime.now(UTC) + EMAIL_CODE_VALIDITY)
        await app[MAILER].send(PersonalMail(
            new_email, "Confirmez votre nouvelle adresse",
            "Bonjour,\n\nPour que cette adresse devienne l'adresse de contact de votre "
            f"messagerie santé, saisissez ce code dans « Paramètres » : {code}\n\nIl est "
            "valable 30 minutes. Si vous n'avez rien demandé, ignorez ce message.\n"))
        await _notify(app, account.id, "Changement d'adresse de contact demandé",
                      "Un changement de l'adresse de contact de votre messagerie santé a été "
                      "demandé. Il ne prendra effet qu'après confirmation depuis la nouvelle "
                      "adresse ; d'ici là, cette adresse reste utilisée.")
    return phone_changed, new_email


async def confirm_email(app: web.Application, account: AccountInfo, code: str) -> str:
    """Make the pending address the contact email; returns it."""
    deps = app[DEPS]
    result = await deps.webstore.take_email_change(
        account.id, re.sub(r"\s", "", code), datetime.now(UTC), EMAIL_CODE_ATTEMPTS)
    if result is None:
        raise SettingsError({"code": "Ce code a expiré ou a été trop souvent mal saisi. "
                                     "Recommencez le changement d'adresse."}, 410)
    if result is False or not isinstance(result, str):
        raise SettingsError({"code": "Code incorrect. Vérifiez le dernier code reçu à votre "
                                     "nouvelle adresse."})
    contact = await deps.directory.contact(account.id)
    old = contact.get("email", "")
    await deps.directory.set_contact(account.id, {**contact, "email": result})
    if old:
        await _notify(app, account.id, "Votre adresse de contact a été changée",
                      f"L'adresse de contact de votre messagerie santé est désormais {result}."
                      " Les codes de connexion y seront envoyés.", to=old)
    return result


async def cancel_email(app: web.Application, account: AccountInfo) -> None:
    await app[DEPS].webstore.drop_email_change(account.id)
