"""Every message the system itself sends: the one owner of system messages.

:class:`SystemMail` builds and delivers

* read receipts (RFC 8098 ``displayed``) when a reader opens a message that asked for one
  (``Disposition-Notification-To``; patients cannot refuse, domain README 3);
* integration receipts (``processed`` / ``processed/error``) for the dossier bridge;
* delivery reports already built by the courier or the SMTP server (DSN, delay warnings);
* the new-message notice to a patient's personal address (the ``notify_patient`` job).

Receipts and reports travel with a null reverse-path (RFC 5321 6.1, RFC 8098 2.1/3.3) as the
policy's ``Kind.SYSTEM`` sender (its rows in ``policy.SYSTEM_RULES``: receipts reach
professionals only), through :class:`mailserver.delivery.Delivery`, so a local recipient gets
them in INBOX and a remote one through the queue. A read receipt is sent once per (reader,
message): the claim is written in the store's one "sent once" record (``store.sent``) before
sending, and the ``$MDNSent`` keyword (RFC 3503) is set on the reader's copy once delivered, so
mail clients agree.

Notices leave the health-mail space: no sender, no subject, no health content, a link only
(domain README 3). They are grouped: while a message a notice announced is still unread, no
other notice goes out for :data:`NOTICE_INTERVAL`. The notice is claimed in the store before it
is mailed and released if mailing fails (the job is retried).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.header import Header
from email.utils import formatdate, make_msgid

from mailserver.delivery import Delivery, parse_header_facts
from mailserver.directory.service import AccountInfo, Directory
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.mailer import Mailer, PersonalMail
from mailserver.policy import Kind, Party
from mailserver.reports.mdn import (
    IntegrationError,
    Mdn,
    build_integration_receipt,
    build_read_receipt,
    receipt_address,
)
from mailserver.store.audit import Action, AuditEvent, Channel, Origin, message_id_hash
from mailserver.store.inactivity import InactiveAccount
from mailserver.store.jobs import JobInfo
from mailserver.store.mailstore import MailStore
from mailserver.store.sent import RECEIPT, SentRecords

INACTIVE_NOTICE = "inactive"

__all__ = ["MDN_SENT", "NOTICE_INTERVAL", "SYSTEM", "SystemMail", "SystemMailSettings",
           "notification_text", "inactivity_message", "INACTIVE_NOTICE"]

log = logging.getLogger(__name__)

MDN_SENT = "$MDNSent"  # RFC 3503 2
NOTICE_INTERVAL = timedelta(hours=1)
"""At most one notice per interval while an announced message is unread."""
SYSTEM = Party("", Kind.SYSTEM)
"""The sender of every system message (null reverse-path)."""


@dataclass(frozen=True)
class SystemMailSettings:
    hostname: str
    domain: str
    patient_domain: str
    base_url: str = ""
    """The webmail's public address, for the link in notices ("" when there is none)."""


def notification_text(base_url: str) -> PersonalMail:
    """The notice itself (recipient filled in by the caller)."""
    link = (base_url.rstrip("/") + "/connexion") if base_url else \
        "l'adresse de votre messagerie santé"
    return PersonalMail(
        "", "Vous avez un nouveau message",
        "Bonjour,\n\nUn nouveau message vous attend dans votre messagerie santé.\n\n"
        f"Pour le lire, connectez-vous : {link}\n\n"
        "Ce courriel est envoyé automatiquement ; n'y répondez pas.\n")


def inactivity_message(settings: SystemMailSettings, account: InactiveAccount,
                       mark_on: datetime) -> bytes:
    """The notice to a professional whose mailbox has not been used for months (French)."""
    since = account.last_activity.strftime("%d/%m/%Y")
    text = (f"Bonjour,\r\n\r\nVotre boîte aux lettres {account.address} n'a pas été utilisée "
            f"depuis le {since}.\r\nSans connexion de votre part, elle sera marquée pour "
            f"suppression le {mark_on.strftime('%d/%m/%Y')}.\r\nPour la conserver, il suffit "
            "de vous connecter (logiciel de messagerie ou webmail).\r\n")
    subject = Header("Votre messagerie sécurisée de santé est inactive", "utf-8").encode()
    return (f"From: Messagerie securisee <postmaster@{settings.domain}>\r\n"
            f"To: {account.address}\r\nSubject: {subject}\r\n"
            f"Date: {formatdate(localtime=False)}\r\n"
            f"Message-ID: {make_msgid(domain=settings.hostname)}\r\n"
            "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            f"\r\n{text}").encode()


class SystemMail:
    """Builds and delivers every message the system sends; the one owner."""

    def __init__(self, settings: SystemMailSettings, *, store: MailStore, delivery: Delivery,
                 directory: Directory, sent: SentRecords, mailer: Mailer) -> None:
        self.settings = settings
        self.store = store
        self.delivery = delivery
        self.directory = directory
        self.sent = sent
        self.mailer = mailer

    # -- receipts (RFC 8098) ----------------------------------------------------------------

    async def read_receipt(self, reader: AccountInfo, message_id: int) -> bool:
        """Send the ``displayed`` MDN for a message ``reader`` opened, once.

        Returns True if a receipt was sent now; False if none was requested (or the request
        is unusable), one was already sent, or it could not be delivered (policy).
        """
        located = await self.store.locate(message_id)
        if located is None or located[0] != reader.id or MDN_SENT in located[2].flags:
            return False
        info = located[2]
        raw = await self.store.read_raw(message_id)
        notify_to = receipt_address(parse_header_facts(raw).mdn_to)
        if notify_to is None or not await self.sent.claim_once(RECEIPT, reader.id, message_id):
            return False
        event = AuditEvent(Action.RECEIPT_SENT, Origin(Channel.SYSTEM), reader.id,
                           reader.address, "ok", {
                               "receipt": "displayed", "to": [notify_to],
                               "message_id_sha256": message_id_hash(
                                   parse_header_facts(raw).message_id)})
        if not await self._send(self._read_receipt(raw, notify_to, reader), receipt=True,
                                audit=(event,)):
            return False
        await self.store.store_flags(info.folder_id, [info.uid], [MDN_SENT], "add",
                                     account_id=reader.id)
        return True

    def _read_receipt(self, raw: bytes, notify_to: str, reader: AccountInfo) -> Mdn:
        s = self.settings
        if not reader.is_patient:
            return build_read_receipt(raw, notify_to=notify_to, final_recipient=reader.address,
                                      reporting_ua=f"{s.hostname}; mssante",
                                      our_domain=s.domain)
        # A patient's receipt (sent by the webmail) is from the patient's address.
        mdn = build_read_receipt(raw, notify_to=notify_to, final_recipient=reader.address,
                                 reporting_ua=f"{s.domain}; MSSante webmail",
                                 our_domain=s.patient_domain)
        message = message_from_bytes(mdn.message, policy=email_policy.compat32)
        message.replace_header("From", reader.address)
        data = message.as_bytes(policy=email_policy.compat32.clone(linesep="\r\n"))
        return Mdn(mdn.envelope_sender, mdn.envelope_recipient, data)

    async def integration_receipt(self, original: bytes, *, notify_to: str,
                                  final_recipient: str, error: IntegrationError | None,
                                  detail: str | None = None) -> str:
        """The dossier bridge's ``processed`` / ``processed/error`` MDN: "sent" or
        "undeliverable" (professionals only, policy.SYSTEM_RULES)."""
        domain = self.settings.domain
        mdn = build_integration_receipt(
            original, notify_to=notify_to, final_recipient=final_recipient,
            reporting_ua=f"{domain}; mssante-dossier-bridge", our_domain=domain, error=error,
            detail=detail)
        event = AuditEvent(Action.RECEIPT_SENT, Origin(Channel.SYSTEM), None, final_recipient,
                           "ok", {"receipt": "processed" if error is None else "error",
                                  "to": [notify_to],
                                  "error": error.value[0] if error is not None else None})
        return ("sent" if await self._send(mdn, receipt=True, audit=(event,))
                else "undeliverable")

    async def _send(self, mdn: Mdn, *, receipt: bool,
                    audit: tuple[AuditEvent, ...] = ()) -> bool:
        report = await self.delivery.deliver(SYSTEM, "", [mdn.envelope_recipient],
                                             mdn.message, receipt=receipt, also=audit)
        if not report.accepted:
            log.info("notices: receipt not deliverable reason=%s",
                     report.outcomes[0].decision.reason.name if report.outcomes else "-")
        return bool(report.accepted)

    # -- delivery reports -------------------------------------------------------------------

    async def report(self, rcpt: str, raw: bytes) -> None:
        """Deliver an already built DSN or delay warning (RFC 3464) to ``rcpt``."""
        report = await self.delivery.deliver(SYSTEM, "", [rcpt], raw)
        if not report.accepted:
            log.warning("notices: delivery report refused: %s",
                        report.outcomes[0].decision.reason.name if report.outcomes else "-")

    # -- inactive professional mailboxes -----------------------------------------------------

    async def inactivity_notice(self, account: InactiveAccount, mark_on: datetime) -> bool:
        """Tell a professional their mailbox will be marked for deletion, once per period of
        inactivity; True when it is delivered (now, or by an earlier pass that stopped before
        recording it)."""
        period = int(account.last_activity.timestamp() // 86400)
        if not await self.sent.claim_once(INACTIVE_NOTICE, account.id, period):
            return True
        report = await self.delivery.deliver(
            SYSTEM, "", [account.address], inactivity_message(self.settings, account, mark_on))
        if not report.accepted:
            log.warning("notices: inactivity notice refused")
        return bool(report.accepted)

    # -- notices to patients ----------------------------------------------------------------

    async def notify_patient_job(self, job: JobInfo) -> None:
        """Job ``notify_patient``: mail the notice to the patient's contact email, if any."""
        if job.account_id is None:
            return
        try:
            account = await self.directory.get(job.account_id)
            if not account.is_patient or account.status != "open":
                return
            contact = await self.directory.contact(account.id)
        except (NotFound, KeyDestroyed):
            return
        email = contact.get("email", "")
        if not email:
            return
        send, previous = await self.sent.claim_notice(account.id, job.message_id or 0,
                                                      NOTICE_INTERVAL)
        if not send:
            log.info("notices: notice grouped with the previous one")
            return
        template = notification_text(self.settings.base_url)
        try:
            await self.mailer.send(PersonalMail(email, template.subject, template.text))
        except BaseException:
            await self.sent.release_notice(account.id, previous)
            raise
        log.info("notices: patient notified")
