"""Delivery status notifications (RFC 3464) honouring RFC 3461 parameters.

Theory of operation
-------------------
:func:`build_dsn` takes what the queue knows about one message (envelope
sender, RFC 3461 ``ENVID``/``RET``, per-recipient ``NOTIFY``/``ORCPT`` and
outcome) and returns the bounce to send, or None when nobody asked for one:

* never for a null envelope sender (RFC 5321 6.1: no bounce of a bounce);
* per recipient (RFC 3461 4.1): ``NOTIFY=NEVER`` suppresses, an explicit list
  selects among FAILURE/DELAY/SUCCESS; absent NOTIFY means FAILURE,DELAY;
* the report is ``multipart/report; report-type=delivery-status``
  (RFC 6522): a French+English text part, ``message/delivery-status``
  (RFC 3464 2.2/2.3), then the original: the whole message for ``RET=FULL``,
  headers only (``text/rfc822-headers``) otherwise. Headers only is also our
  default when RET is absent (RFC 3461 4.3 leaves it to us), which keeps
  health content out of bounces.

The DSN is sent from ``MAILER-DAEMON@<our domain>`` with an empty envelope
sender (:attr:`Dsn.envelope_sender` is ``""``).

:func:`parse_dsn` reads such a report back (stdlib email parser), raising
only :class:`DsnParseError`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.header import Header
from email.message import Message
from email.utils import format_datetime

from mailserver.reports.mime import (
    WIRE,
    as_part,
    clean,
    get_field,
    header_block,
    headers_part,
    new_report,
    report_parts,
    strip_type,
    text_of,
    text_part,
    typed,
)

__all__ = [
    "Action",
    "Dsn",
    "DsnParseError",
    "FailureReason",
    "Notify",
    "ParsedDsn",
    "ParsedRecipient",
    "RecipientOutcome",
    "Ret",
    "build_dsn",
    "parse_dsn",
]


class Notify(enum.Enum):
    """RFC 3461 4.1 NOTIFY values."""

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


class Ret(enum.Enum):
    """RFC 3461 4.3 RET values."""

    FULL = "FULL"
    HDRS = "HDRS"


class Action(enum.Enum):
    """RFC 3464 2.3.3 action values we report."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"


class FailureReason(enum.Enum):
    """Why a recipient failed, with default status (RFC 3463) and texts (fr, en)."""

    MAILBOX_CLOSED = ("5.2.1", "la boîte aux lettres du destinataire est fermée",
                      "the recipient's mailbox is closed")
    PATIENT_UNKNOWN = ("5.1.1", "patient inconnu de notre service",
                       "the patient is unknown to our service")
    INVALID_ADDRESS = ("5.1.3", "l'adresse du destinataire est invalide",
                       "the recipient address is invalid")
    MESSAGE_TOO_LARGE = ("5.3.4", "le message dépasse la taille autorisée (25 Mo)",
                         "the message exceeds the allowed size (25 MB)")
    TRUST_SPACE = ("5.7.1", "le destinataire n'appartient pas à l'espace de confiance MSSanté",
                   "the recipient is outside the MSSanté trust space")
    REMOTE_ERROR = ("5.0.0", "le serveur distant a refusé le message",
                    "the remote server rejected the message")
    DELAYED = ("4.4.1", "le serveur distant est injoignable pour le moment; nouvel essai prévu",
               "the remote server cannot be reached yet; delivery will be retried")
    DELIVERED = ("2.0.0", "le message a été remis", "the message was delivered")

    @property
    def status(self) -> str:
        """Default RFC 3463 status code."""
        return self.value[0]

    @property
    def text_fr(self) -> str:
        """French explanation."""
        return self.value[1]

    @property
    def text_en(self) -> str:
        """English explanation."""
        return self.value[2]


class DsnParseError(Exception):
    """The message is not a readable delivery-status report."""


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What happened to one recipient, plus its RFC 3461 RCPT parameters.

    Attributes:
        final_recipient: address delivered to (RFC 3464 2.3.2).
        action: failed / delayed / delivered / relayed.
        reason: human-readable cause; its status is used if ``status`` is None.
        status: RFC 3463 code, e.g. ``5.1.1``.
        notify: RCPT NOTIFY values; None when the parameter was absent.
        original_recipient: ORCPT value as given, e.g. ``rfc822;a@b.fr``.
        diagnostic: remote reply text (``smtp; 550 5.1.1 ...``) if any.
        remote_mta: remote host name if a remote MTA was involved.
        last_attempt: time of the last attempt.
        will_retry_until: for ``delayed``, when we give up.
    """

    final_recipient: str
    action: Action
    reason: FailureReason
    status: str | None = None
    notify: frozenset[Notify] | None = None
    original_recipient: str | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None

    def wants_report(self) -> bool:
        """RFC 3461 4.1: does this recipient's NOTIFY ask for this action?"""
        notify = self.notify if self.notify is not None else {Notify.FAILURE, Notify.DELAY}
        if Notify.NEVER in notify:
            return False
        wanted = {
            Action.FAILED: Notify.FAILURE,
            Action.DELAYED: Notify.DELAY,
            Action.DELIVERED: Notify.SUCCESS,
            Action.RELAYED: Notify.SUCCESS,
        }[self.action]
        return wanted in notify


@dataclass(frozen=True, slots=True)
class Dsn:
    """A DSN ready to queue: envelope and message bytes (CRLF)."""

    envelope_sender: str
    envelope_recipient: str
    message: bytes


def _typed(value: str | None, default_type: str) -> str | None:
    """Prefix an RFC 3464 type (``rfc822;``, ``smtp;``) unless one is present."""
    return typed(value, default_type) if value else None


def _address_type(value: str) -> str:
    return _typed(value, "rfc822") or ""


def _fields(pairs: Iterable[tuple[str, str | None]]) -> Message:
    block = Message(policy=policy.compat32)
    for name, value in pairs:
        if value:
            block[name] = clean(value)
    return block


def _human_text(outcomes: list[RecipientOutcome]) -> str:
    fr = ["Ceci est un message automatique du serveur de messagerie.", ""]
    en = ["This is an automatic message from the mail server.", ""]
    for o in outcomes:
        if o.action is Action.FAILED:
            fr.append(f"Le message n'a pas pu être remis à {o.final_recipient} : "
                      f"{o.reason.text_fr}.")
            en.append(f"The message could not be delivered to {o.final_recipient}: "
                      f"{o.reason.text_en}.")
        elif o.action is Action.DELAYED:
            fr.append(f"La remise à {o.final_recipient} est retardée : {o.reason.text_fr}.")
            en.append(f"Delivery to {o.final_recipient} is delayed: {o.reason.text_en}.")
        else:
            fr.append(f"Le message a été remis à {o.final_recipient}.")
            en.append(f"The message was delivered to {o.final_recipient}.")
        if o.diagnostic:
            fr.append(f"Réponse du serveur distant : {clean(o.diagnostic)}")
            en.append(f"Remote server said: {clean(o.diagnostic)}")
    return "\r\n".join(fr + ["", "-" * 40, ""] + en) + "\r\n"


def build_dsn(
    *,
    original: bytes,
    envelope_sender: str,
    outcomes: Iterable[RecipientOutcome],
    reporting_mta: str,
    our_domain: str,
    envid: str | None = None,
    ret: Ret | None = None,
    arrival_date: datetime | None = None,
    now: datetime | None = None,
) -> Dsn | None:
    """Build the RFC 3464 report for the recipients that asked for one.

    Args:
        original: the original message bytes.
        envelope_sender: original MAIL FROM (the DSN goes there).
        outcomes: per-recipient results.
        reporting_mta: our host name (Reporting-MTA: dns; ...).
        our_domain: domain of the ``MAILER-DAEMON`` From address.
        envid: RFC 3461 ENVID, echoed as Original-Envelope-Id.
        ret: RFC 3461 RET; FULL returns the whole message, else headers only.
        arrival_date: when we received the original.
        now: report time (tests); defaults to the current UTC time.

    Returns:
        The DSN, or None if the sender is null or no recipient asked.
    """
    if not envelope_sender or envelope_sender == "<>":
        return None
    selected = [o for o in outcomes if o.wants_report()]
    if not selected:
        return None
    now = now or datetime.now(timezone.utc)
    if all(o.action is Action.FAILED for o in selected):
        subject = "Échec de remise / Delivery failure"
    elif all(o.action is Action.DELAYED for o in selected):
        subject = "Remise retardée / Delivery delayed"
    else:
        subject = "Avis de remise / Delivery status notification"

    report = new_report(
        "delivery-status", our_domain=our_domain, to=envelope_sender,
        subject=Header(subject, "utf-8").encode(),  # RFC 2047 encoded-word
        msgid_domain=reporting_mta, now=now,
    )
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 5
    report.attach(text_part(_human_text(selected)))

    status = Message(policy=policy.compat32)
    status["Content-Type"] = "message/delivery-status"
    blocks = [_fields([
        ("Original-Envelope-Id", envid),
        ("Reporting-MTA", f"dns; {reporting_mta}"),
        ("Arrival-Date", format_datetime(arrival_date) if arrival_date else None),
    ])]
    blocks.extend(_recipient_fields(o) for o in selected)
    status.set_payload(list[Message | str](blocks))
    report.attach(status)

    if ret is Ret.FULL:
        returned = Message(policy=policy.compat32)
        returned["Content-Type"] = "message/rfc822"
        returned.set_payload([message_from_bytes(original, policy=policy.compat32)])
    else:
        returned = headers_part(original)
    report.attach(returned)
    data = report.as_bytes(policy=WIRE)
    return Dsn(envelope_sender="", envelope_recipient=envelope_sender, message=data)


def _recipient_fields(o: RecipientOutcome) -> Message:
    """The per-recipient block of a ``message/delivery-status`` part (RFC 3464 2.3)."""
    return _fields([
        ("Original-Recipient", o.original_recipient),
        ("Final-Recipient", _address_type(o.final_recipient)),
        ("Action", o.action.value),
        ("Status", o.status or o.reason.status),
        ("Remote-MTA", f"dns; {o.remote_mta}" if o.remote_mta else None),
        ("Diagnostic-Code", _typed(o.diagnostic, "smtp")),
        ("Last-Attempt-Date", format_datetime(o.last_attempt) if o.last_attempt else None),
        ("Will-Retry-Until",
         format_datetime(o.will_retry_until)
         if o.will_retry_until and o.action is Action.DELAYED else None),
    ])


# --- parsing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedRecipient:
    """One per-recipient block of a parsed DSN."""

    final_recipient: str
    action: str
    status: str
    original_recipient: str | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None
    last_attempt: str | None = None
    will_retry_until: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedDsn:
    """A parsed delivery-status report."""

    reporting_mta: str | None
    envid: str | None
    arrival_date: str | None
    recipients: tuple[ParsedRecipient, ...]
    human_text: str
    returned_headers: str | None
    returned_full: bool


def parse_dsn(data: bytes) -> ParsedDsn:
    """Parse a ``multipart/report; report-type=delivery-status`` message.

    Raises:
        DsnParseError: not such a report, or required fields missing.
    """
    try:
        return _parse_dsn(data)
    except DsnParseError:
        raise
    except Exception as exc:  # the stdlib parser's many failure modes
        raise DsnParseError("unreadable DSN") from exc


def _parse_dsn(data: bytes) -> ParsedDsn:
    parts = report_parts(data, "delivery-status", DsnParseError)
    human_text = text_of(parts[0])
    status = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
    if status is None:
        raise DsnParseError("no message/delivery-status part")
    raw_blocks = status.get_payload()
    if not isinstance(raw_blocks, list) or len(raw_blocks) < 2:
        raise DsnParseError("delivery-status needs per-message and per-recipient fields")
    blocks = [as_part(b, DsnParseError) for b in raw_blocks]
    per_message = blocks[0]
    recipients = []
    for block in blocks[1:]:
        final, action, code = (get_field(block, "Final-Recipient"), get_field(block, "Action"),
                               get_field(block, "Status"))
        if not (final and action and code and code.strip()):
            raise DsnParseError("per-recipient block lacks Final-Recipient/Action/Status")
        recipients.append(ParsedRecipient(
            final_recipient=strip_type(final) or "",
            action=action.strip().lower(),
            status=code.split()[0],
            original_recipient=strip_type(get_field(block, "Original-Recipient")),
            diagnostic=strip_type(get_field(block, "Diagnostic-Code")),
            remote_mta=strip_type(get_field(block, "Remote-MTA")),
            last_attempt=get_field(block, "Last-Attempt-Date"),
            will_retry_until=get_field(block, "Will-Retry-Until"),
        ))
    returned_headers: str | None = None
    returned_full = False
    for part in parts[2:]:
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                embedded = as_part(inner[0], DsnParseError)
                returned_headers = header_block(embedded.as_bytes(policy=WIRE))
            returned_full = True
        elif ctype == "text/rfc822-headers":
            returned_headers = text_of(part)
    return ParsedDsn(
        reporting_mta=strip_type(get_field(per_message, "Reporting-MTA")),
        envid=get_field(per_message, "Original-Envelope-Id"),
        arrival_date=get_field(per_message, "Arrival-Date"),
        recipients=tuple(recipients),
        human_text=human_text,
        returned_headers=returned_headers,
        returned_full=returned_full,
    )

