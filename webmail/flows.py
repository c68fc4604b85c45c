"""Authentication journeys shared by the HTML views and the JSON API: first connection,
login with a one-time code, password reset. French messages (shown to patients).

First connection checks three things the patient holds: the provisional code of the letter,
their NIR (13 characters, or 15 with the key: the INS is NIR + key) and their Vitale card
serial number. We have no access to Vitale card data: the serial is only checked for format
(digits, 8 to 20 of them) and recorded, sealed with the patient's data key, as evidence of
the declaration (see :class:`webmail.models.VitaleCard`).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from mailserver.directory.service import AccountInfo
from mailserver.errors import (
    AlreadyExists,
    AuthError,
    IdentifierError,
    TransitionRefused,
    ValidationError,
)
from mailserver.identifiers import ins_key, validate_ins
from mailserver.lifecycle import Actor, Event, Refusal
from mailserver.mailer import PersonalMail
from mailserver.store.audit import Channel
from webmail.passwords import identifier_problems, password_problems
from webmail.sessions import RateLimiter, SessionInfo, digest
from webmail.web import DEPS, LIMITER, MAILER, SESSIONS

__all__ = ["FlowError", "normalise_nir", "check_vitale", "first_check", "first_finish", "oppose",
           "FIRST_STATUSES",
           "login", "verify_otp", "request_reset", "reset_password", "reset_account",
           "STATUS_TEXT", "RESET_VALIDITY", "valid_email", "valid_phone"]

log = logging.getLogger(__name__)

RESET_VALIDITY = timedelta(minutes=30)
_NIR = re.compile(r"^[12378]\d{4}(?:\d{2}|2A|2B)\d{6}$")
_EMAIL = re.compile(r"^[^@\s<>\"']+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(r"^(\+\d{6,15}|0\d{9})$")

STATUS_TEXT = {
    "pending": "Votre messagerie n'est pas encore activée. Utilisez le code provisoire de "
               "votre courrier (« Première connexion ») pour l'activer ou vous y opposer ; "
               "sans réponse de votre part, elle s'ouvrira automatiquement à la date "
               "indiquée dans le courrier.",
    "opposed": "Vous vous êtes opposé(e) à l'ouverture de votre messagerie santé. Vous "
               "pouvez l'activer à tout moment : demandez un nouveau code provisoire au 3422, "
               "puis faites votre première connexion.",
    "closed": "Votre espace santé est fermé. Vos messages, documents et votre profil médical "
              "sont archivés pendant 10 ans. Pour le rouvrir et tout retrouver, demandez un "
              "nouveau code provisoire au 3422, puis faites votre « Première connexion ».",
    "archive_deleted": "Votre espace santé est fermé et ses données archivées ont été "
                       "supprimées à votre demande. Vous pouvez rouvrir un espace vide : "
                       "demandez un nouveau code provisoire au 3422, puis faites votre "
                       "« Première connexion ».",
    "purged": "Votre messagerie santé a été fermée.",
    "suspended": "Votre messagerie santé est suspendue. Contactez l'assistance.",
}
FIRST_STATUSES = ("pending", "opposed", "open", "closed", "archive_deleted")
"""States in which the letter's code leads to the first connection (pending and opposed
accounts choose first: activate now, or oppose while pending; a closed space is reopened by
it: a code reissued by the 3422 line proves the patient wants it back)."""
REOPEN_STATUSES = ("closed", "archive_deleted")
_GENERIC_FIRST = ("Ces informations ne correspondent pas à un courrier d'activation valide. "
                  "Vérifiez le code provisoire, votre numéro de sécurité sociale et le numéro "
                  "de votre carte Vitale.")


@dataclass
class FlowError(Exception):
    """A journey step refused; ``messages`` are shown to the patient."""

    messages: list[str]
    status: int = 400
    restart: bool = False


def normalise_nir(value: str) -> str:
    """NIR as typed (13, or 15 with key; spaces allowed) → the 15-character INS."""
    v = re.sub(r"[\s.-]", "", value).upper()
    if len(v) == 13 and _NIR.match(v):
        return f"{v}{ins_key(v):02d}"
    if len(v) == 15 and _NIR.match(v[:13]):
        try:
            return validate_ins(v)
        except IdentifierError as exc:
            raise FlowError(["La clé de votre numéro de sécurité sociale (les deux derniers "
                             "chiffres) ne correspond pas."]) from exc
    raise FlowError(["Le numéro de sécurité sociale doit comporter 13 caractères, ou 15 "
                     "avec la clé (par exemple 2 79 03 51 215 189 89)."])


def check_vitale(value: str) -> str:
    """The Vitale card serial number: digits only, 8 to 20 of them (format check only)."""
    v = re.sub(r"[\s.-]", "", value)
    if not v.isdigit() or not 8 <= len(v) <= 20:
        raise FlowError(["Le numéro de série de la carte Vitale se compose de chiffres "
                         "(entre 8 et 20), imprimés au dos de la carte."])
    return v


def valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


def valid_phone(value: str) -> bool:
    return bool(_PHONE.match(re.sub(r"[\s.-]", "", value)))


async def first_check(app: web.Application, client: str, code: str, nir: str,
                      vitale: str, *, reopen: bool = True) -> AccountInfo:
    """Step 1 of the first connection: letter code + NIR + Vitale serial. A closed space is
    reopened here (unless ``reopen`` is false: the opposition asks nothing of the kind)."""
    services, limiter = app[DEPS], app[LIMITER]
    if await limiter.blocked("first-client", client):
        raise FlowError([_too_many(limiter, "first-client")], 429)
    ins = normalise_nir(nir)
    serial = check_vitale(vitale)
    account = await services.directory.by_ins(ins)
    if account is not None and await limiter.blocked("first-account", str(account.id)):
        raise FlowError([_too_many(limiter, "first-account")], 429)
    ok = (account is not None and account.is_patient
          and await services.directory.check_provisional_code(account.id, code))
    if not ok or account is None:
        await limiter.fail("first-client", client)
        if account is not None:
            await limiter.fail("first-account", str(account.id))
        raise FlowError([_GENERIC_FIRST])
    if account.status not in FIRST_STATUSES:
        raise FlowError([STATUS_TEXT.get(account.status, "Votre messagerie est fermée.")], 403)
    if reopen and account.status in REOPEN_STATUSES and services.closing is not None:
        await services.closing.reactivate(account.id, Actor.patient(), "first connection")
        account = await services.directory.get(account.id)
    if account.status in FIRST_STATUSES[:3]:
        await services.webstore.record_vitale(account.id, serial, datetime.now(UTC))
    await limiter.clear("first-account", str(account.id))
    return account


async def oppose(app: web.Application, account_id: int) -> None:
    """The patient opposes the opening of their pending account (after :func:`first_check`):
    no identifier or password is created, the letter's code stops working."""
    try:
        await app[DEPS].directory.transition(account_id, Event.OPPOSE, Actor.patient(),
                                             "online")
    except TransitionRefused as exc:
        if exc.refusal is Refusal.WINDOW_OVER:
            raise FlowError(["Le délai pour vous opposer est dépassé : votre messagerie "
                             "s'ouvre. Vous pourrez la fermer à tout moment."], 409) from exc
        raise FlowError([STATUS_TEXT.get(exc.state, "Cette opposition n'est plus possible.")],
                        409) from exc


async def first_finish(app: web.Application, account_id: int, *, identifier: str,
                       password: str, password2: str, email: str, phone: str) -> str:
    """Step 2: choose identifier and password, confirm the contacts; consumes the code."""
    services = app[DEPS]
    account = await services.directory.get(account_id)
    if not await services.queries.provisional_code_pending(account_id):
        raise FlowError(["Ce code provisoire a déjà été utilisé. Connectez-vous avec votre "
                         "identifiant."], 409, restart=True)
    ident = identifier.strip().lower()
    problems = identifier_problems(ident)
    problems += password_problems(password, identifier=ident, nir=account.ins or "")
    if password != password2:
        problems.append("Les deux mots de passe saisis sont différents.")
    email = email.strip()
    phone = re.sub(r"[\s.-]", "", phone)
    if not valid_email(email):
        problems.append("L'adresse électronique de contact n'est pas valide.")
    if phone and not valid_phone(phone):
        problems.append("Le numéro de téléphone doit être au format 06 12 34 56 78 ou "
                        "+33 6 12 34 56 78.")
    holder = await services.directory.by_login(ident) if not problems else None
    if holder is not None and holder.id != account_id:  # a reopened space keeps its own
        problems.append("Cet identifiant est déjà pris : choisissez-en un autre.")
    if problems:
        raise FlowError(problems)
    try:
        await services.directory.consume_provisional_code(account_id, login_id=ident,
                                                          password=password)
    except AlreadyExists as exc:
        raise FlowError(["Cet identifiant est déjà pris : choisissez-en un autre."]) from exc
    except ValidationError as exc:
        raise FlowError(["Ce mot de passe n'est pas accepté."]) from exc
    contact = {"email": email}
    if phone:
        contact["phone"] = phone
    await services.directory.set_contact(account_id, contact)
    return ident


def duration_fr(delay: timedelta) -> str:
    """A lockout duration in words: "15 minutes", "une heure", "2 heures"."""
    minutes = max(1, round(delay.total_seconds() / 60))
    if minutes % 60:
        return "une minute" if minutes == 1 else f"{minutes} minutes"
    hours = minutes // 60
    return "une heure" if hours == 1 else f"{hours} heures"


def _too_many(limiter: RateLimiter, *purposes: str) -> str:
    """The lockout notice, with the longest lock of ``purposes`` as configured."""
    lock = max(limiter.limits[p].lock for p in purposes)
    return f"Trop de tentatives. Patientez avant de réessayer ({duration_fr(lock)} au plus)."


async def login(app: web.Application, client: str, identifier: str, password: str
                ) -> SessionInfo:
    """Check identifier + password; mail a one-time code; returns an ``otp`` session."""
    services, limiter = app[DEPS], app[LIMITER]
    ident = identifier.strip().lower()
    if await limiter.blocked("login-client", client) or (
            ident and await limiter.blocked("login-account", ident)):
        raise FlowError([_too_many(limiter, "login-client", "login-account")], 429)
    try:
        account = await services.directory.authenticate(ident, password, client=client,
                                                        allow_patients=True,
                                                        channel=Channel.WEBMAIL)
    except AuthError as exc:
        await limiter.fail("login-client", client)
        if ident:
            await limiter.fail("login-account", ident)
        if exc.locked:
            wait = duration_fr(timedelta(seconds=services.settings.lockout_seconds))
            raise FlowError(["Votre compte est temporairement verrouillé après plusieurs "
                             f"échecs. Réessayez dans {wait} au plus, ou réinitialisez votre "
                             "mot de passe."], 429) from exc
        if exc.not_allowed:
            info = await services.directory.by_login(ident)
            text = STATUS_TEXT.get(info.status if info else "", "Ce compte ne peut pas se "
                                   "connecter ici.")
            raise FlowError([text], 403) from exc
        raise FlowError(["Identifiant ou mot de passe incorrect."], 401) from exc
    if not account.is_patient:
        raise FlowError(["Cette messagerie web est réservée aux patients. Les professionnels "
                         "utilisent leur logiciel de messagerie."], 403)
    if account.status != "open":
        raise FlowError([STATUS_TEXT.get(account.status, "Votre messagerie est fermée.")], 403)
    contact = await services.directory.contact(account.id)
    if not contact.get("email"):
        raise FlowError(["Aucune adresse électronique de contact n'est enregistrée : "
                         "contactez l'assistance."], 409)
    if await limiter.blocked("otp-account", str(account.id)):
        # The one-time-code step is locked: mailing a fresh code on every password would
        # let the codes be guessed anew (and flood the patient's mailbox).
        raise FlowError([_too_many(limiter, "otp-account")], 429)
    await limiter.clear("login-account", ident)
    session = await app[SESSIONS].create(account.id, "otp")
    code = await app[SESSIONS].set_otp(session)
    await app[MAILER].send(PersonalMail(
        contact["email"], "Votre code de connexion",
        f"Bonjour,\n\nVotre code de connexion à votre messagerie santé est : {code}\n\n"
        "Il est valable 10 minutes. Si vous n'avez pas demandé à vous connecter, changez "
        "votre mot de passe.\n"))
    return session


async def verify_otp(app: web.Application, session: SessionInfo, code: str) -> SessionInfo:
    """Check the mailed code; returns the NEW active session (rotation at login)."""
    limiter, sessions = app[LIMITER], app[SESSIONS]
    subject = str(session.account_id)
    if await limiter.blocked("otp-account", subject):
        await sessions.destroy(session.token)
        raise FlowError([_too_many(limiter, "otp-account")], 429, restart=True)
    result = await sessions.check_otp(session, re.sub(r"\s", "", code))
    if result is None:
        raise FlowError(["Ce code a expiré ou a été trop souvent mal saisi. Connectez-vous "
                         "à nouveau pour recevoir un nouveau code."], 401, restart=True)
    if not result:
        await limiter.fail("otp-account", subject)
        raise FlowError(["Code incorrect. Vérifiez le dernier code reçu par courriel."], 401)
    await limiter.clear("otp-account", subject)
    return await sessions.rotate(session, "active")


async def request_reset(app: web.Application, client: str, identifier: str,
                        base_url: str) -> None:
    """Mail a reset link to the contact email of the account named by ``identifier`` (login
    identifier or NIR). Always silent about whether the account exists."""
    services, limiter = app[DEPS], app[LIMITER]
    if await limiter.fail("reset-client", client):
        raise FlowError([_too_many(limiter, "reset-client")], 429)
    account = await services.directory.by_login(identifier)
    if account is None:
        try:
            account = await services.directory.by_ins(normalise_nir(identifier))
        except FlowError:
            account = None
    if account is None or not account.is_patient or account.status != "open":
        return
    if await limiter.fail("reset-account", str(account.id)):
        return
    login_id = await services.queries.login_id(account.id)
    contact = await services.directory.contact(account.id)
    if not login_id or not contact.get("email"):
        return
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + RESET_VALIDITY
    await services.webstore.replace_reset_token(account.id, digest(token), expires)
    await app[MAILER].send(PersonalMail(
        contact["email"], "Réinitialisation de votre mot de passe",
        f"Bonjour,\n\nVotre identifiant est : {login_id}\n\nPour choisir un nouveau mot de "
        f"passe, ouvrez ce lien (valable 30 minutes, une seule fois) :\n"
        f"{base_url.rstrip('/')}/reinitialiser/{token}\n\nSi vous n'avez rien demandé, "
        "ignorez ce message.\n"))


async def reset_account(app: web.Application, token: str) -> int | None:
    """The account of a live reset token, or None."""
    if not token or len(token) > 100:
        return None
    found = await app[DEPS].webstore.reset_token(digest(token))
    if found is None:
        return None
    account_id, expires = found
    return account_id if expires > datetime.now(UTC) else None


async def reset_password(app: web.Application, token: str, password: str,
                         password2: str) -> None:
    """Set a new password with a reset token (single use); ends every session."""
    services = app[DEPS]
    account_id = await reset_account(app, token)
    if account_id is None:
        raise FlowError(["Ce lien a expiré ou a déjà servi. Faites une nouvelle demande."],
                        410, restart=True)
    account = await services.directory.get(account_id)
    login_id = await services.queries.login_id(account_id) or ""
    problems = password_problems(password, identifier=login_id, nir=account.ins or "")
    if password != password2:
        problems.append("Les deux mots de passe saisis sont différents.")
    if problems:
        raise FlowError(problems)
    if not await services.webstore.consume_reset_token(digest(token)):
        raise FlowError(["Ce lien a déjà servi."], 410, restart=True)
    await services.directory.set_password(account_id, password)
    await app[SESSIONS].destroy_all(account_id)
