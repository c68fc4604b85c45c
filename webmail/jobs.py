"""Background job ``notify_patient``: tell the patient, at their personal contact email, that
a new message awaits — with a link, and nothing else: no sender, no subject, no health
content (domain README 3). Registered with the server's worker loop on import.
"""

from __future__ import annotations

import logging

from mailserver import workers
from mailserver.app import Services
from mailserver.delivery import JOB_NOTIFY_PATIENT
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.jobs import JobInfo
from webmail.mailer import Mailer, PersonalMail

__all__ = ["notify_patient", "notification_text"]

log = logging.getLogger(__name__)


def notification_text(base_url: str) -> PersonalMail:
    """The notice itself (recipient filled in by the caller)."""
    link = (base_url.rstrip("/") + "/connexion") if base_url else \
        "l'adresse de votre messagerie santé"
    return PersonalMail(
        "", "Vous avez un nouveau message",
        "Bonjour,\n\nUn nouveau message vous attend dans votre messagerie santé.\n\n"
        f"Pour le lire, connectez-vous : {link}\n\n"
        "Ce courriel est envoyé automatiquement ; n'y répondez pas.\n")


async def notify_patient(services: Services, job: JobInfo) -> None:
    """Job handler: mail the notice to the patient's contact email (if they have one)."""
    if job.account_id is None:
        return
    try:
        account = await services.directory.get(job.account_id)
        if not account.is_patient or account.status != "open":
            return
        contact = await services.directory.contact(account.id)
    except (NotFound, KeyDestroyed):
        return
    email = contact.get("email", "")
    if not email:
        return
    base = services.config.webmail.base_url or (
        f"http://{services.config.listen.http}" if services.config.listen.http else "")
    template = notification_text(base)
    await Mailer(services.config).send(PersonalMail(email, template.subject, template.text))
    log.info("webmail: patient notified")


workers.register(JOB_NOTIFY_PATIENT, notify_patient)
