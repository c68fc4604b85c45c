"""Background job ``notify_patient``: tell the patient, at their personal contact email, that
a new message awaits — with a link, and nothing else: no sender, no subject, no health
content (domain README 3). Registered with the server's worker loop on import.

Notices are grouped: while a message a notice announced is still unread, no other notice goes
out for :data:`NOTICE_INTERVAL` (at most one an hour). Once the patient has read it, the next
new message is announced at once. The notice is claimed in the database before it is mailed
(several workers never send two) and released if mailing fails (the job is retried).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver import workers
from mailserver.app import Services
from mailserver.delivery import JOB_NOTIFY_PATIENT
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.jobs import JobInfo
from mailserver.store.models import Folder, Message
from webmail.mailer import Mailer, PersonalMail
from webmail.models import NoticeSent

__all__ = ["notify_patient", "notification_text", "NOTICE_INTERVAL"]

log = logging.getLogger(__name__)

NOTICE_INTERVAL = timedelta(hours=1)
"""At most one notice per interval while an announced message is unread."""

_Previous = tuple[datetime, int] | None


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


async def _announced_unread(s: AsyncSession, account_id: int, up_to_message: int) -> bool:
    """Is a message the last notice announced (INBOX, id <= its newest) still unread?"""
    q = (select(Message.id).join(Folder, Folder.id == Message.folder_id)
         .where(Message.account_id == account_id, Folder.name == "INBOX",
                Message.id <= up_to_message,
                or_(Message.flags.is_(None),
                    ~Message.flags.contains("\\Seen", autoescape=True)))
         .limit(1))
    return (await s.execute(q)).first() is not None


async def _claim_notice(services: Services, account_id: int, message_id: int
                        ) -> tuple[bool, _Previous]:
    """(send it?, the previous notice to restore if mailing fails)."""
    now = datetime.now(UTC)

    async def op(s: AsyncSession) -> tuple[bool, _Previous]:
        row = await s.get(NoticeSent, account_id, with_for_update=not services.db.is_sqlite)
        if row is None:
            s.add(NoticeSent(account_id=account_id, sent_at=now, message_id=message_id))
            return True, None
        previous = (_utc(row.sent_at), row.message_id)
        if now - previous[0] < NOTICE_INTERVAL \
                and await _announced_unread(s, account_id, row.message_id):
            return False, previous
        row.sent_at, row.message_id = now, max(message_id, row.message_id)
        return True, previous

    try:
        return await services.db.write(op)
    except IntegrityError:  # another worker sent the first notice at this very moment
        return False, None


async def _release_notice(services: Services, account_id: int, previous: _Previous) -> None:
    async def op(s: AsyncSession) -> None:
        row = await s.get(NoticeSent, account_id)
        if row is None:
            return
        if previous is None:
            await s.delete(row)
        else:
            row.sent_at, row.message_id = previous

    await services.db.write(op)


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
    send, previous = await _claim_notice(services, account.id, job.message_id or 0)
    if not send:
        log.info("webmail: notice grouped with the previous one")
        return
    template = notification_text(base)
    try:
        await Mailer(services.config).send(PersonalMail(email, template.subject, template.text))
    except BaseException:
        await _release_notice(services, account.id, previous)
        raise
    log.info("webmail: patient notified")


workers.register(JOB_NOTIFY_PATIENT, notify_patient)
