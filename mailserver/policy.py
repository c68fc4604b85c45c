"""Who may send to whom: the single decision point of the server.

Rules (../shared/domain/README.md §3):

1. A recipient must be a well-formed address, hosted here (and known, its mailbox not
   crypto-shredded) or in the trust space.
2. Professionals and organisations (PER, ORG, APP), local or from a trusted operator, may write
   to any professional and to patients whose account is open; mail to a patient is limited to
   25 MB.
3. A patient never starts a conversation, except with the ORG mailbox of a pharmacy that
   dispensed to them in the past 12 months (the dossier bridge supplies that list).
4. A patient replies only inside a conversation a professional started, only to its
   participants (the professional, or the trust-space Reply-To they gave), and not once the
   professional closed it (``X-MSS-MES: FIN`` or a ``[FIN]`` subject).
5. Patients never write to other patients, nor outside the trust space.
6. The read receipt a professional asked for is sent when the patient opens the message; the
   patient cannot refuse it, even in a closed conversation (it goes to professionals only).
7. Messages the system itself sends (sender kind ``SYSTEM``, a null reverse-path: read and
   integration receipts, delivery reports) follow :data:`SYSTEM_RULES`: receipts reach
   professionals only, never a patient; delivery reports go back to whoever sent the message.
   Notices to patients' personal addresses leave the mail system and are not decided here.

``decide`` is synchronous and pure: callers gather the facts (directory, trust list,
conversations) and map the :class:`Reason` to their protocol's reply.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Kind", "Reason", "Party", "ConversationFacts", "Facts", "Decision", "decide",
           "PATIENT_MAX_SIZE", "REASON_TEXT", "Closing", "closing", "FIN_SUBJECT", "SYSTEM_RULES",
           "can_reply"]

PATIENT_MAX_SIZE = 25 * 1000 * 1000
"""The national limit is "25 Mo"; we read it as 25 * 10^6 bytes, the stricter reading."""


class Kind(enum.Enum):
    PROFESSIONAL = "professional"          # a PER/ORG/APP mailbox hosted here
    PATIENT = "patient"                    # a patient mailbox hosted here
    REMOTE_PROFESSIONAL = "remote-professional"  # a trusted operator's professional domain
    REMOTE_PATIENT = "remote-patient"      # a trusted operator's patient domain
    UNKNOWN_LOCAL = "unknown-local"        # one of our domains, but no such mailbox
    OUTSIDE = "outside"                    # a domain outside the trust space
    INVALID = "invalid"                    # not a usable address
    SYSTEM = "system"                      # this server itself (receipts, reports; <> sender)


class Reason(enum.Enum):
    ALLOWED = "allowed"
    INVALID_ADDRESS = "invalid-address"
    UNKNOWN_RECIPIENT = "unknown-recipient"
    RECIPIENT_NOT_OPEN = "recipient-not-open"
    OUTSIDE_TRUST_SPACE = "outside-trust-space"
    SENDER_OUTSIDE_TRUST_SPACE = "sender-outside-trust-space"
    SENDER_NOT_AUTHORISED = "sender-not-authorised"
    PATIENT_TO_PATIENT = "patient-to-patient"
    PATIENT_CANNOT_START = "patient-cannot-start"
    CONVERSATION_CLOSED = "conversation-closed"
    NOT_A_PARTICIPANT = "not-a-participant"
    TOO_LARGE = "too-large"
    MAILBOX_SHREDDED = "mailbox-shredded"
    RECEIPT_TO_NON_PROFESSIONAL = "receipt-to-non-professional"


REASON_TEXT: dict[Reason, str] = {
    Reason.ALLOWED: "allowed",
    Reason.INVALID_ADDRESS: "invalid address",
    Reason.UNKNOWN_RECIPIENT: "no such mailbox here (patient or professional unknown)",
    Reason.RECIPIENT_NOT_OPEN: "recipient mailbox is closed or not open",
    Reason.OUTSIDE_TRUST_SPACE: "recipient domain is outside the MSSante trust space",
    Reason.SENDER_OUTSIDE_TRUST_SPACE: "sender domain is outside the MSSante trust space",
    Reason.SENDER_NOT_AUTHORISED: "sender is not allowed to send mail",
    Reason.PATIENT_TO_PATIENT: "patients cannot write to patients",
    Reason.PATIENT_CANNOT_START: "a patient may only reply in a conversation a professional "
                                 "started",
    Reason.CONVERSATION_CLOSED: "the professional closed this conversation to replies",
    Reason.NOT_A_PARTICIPANT: "recipient is not a participant of this conversation",
    Reason.TOO_LARGE: "message exceeds the 25 MB limit for patients",
    Reason.MAILBOX_SHREDDED: "recipient mailbox has been destroyed (its data key was shredded)",
    Reason.RECEIPT_TO_NON_PROFESSIONAL: "receipts go to professionals only",
}


class Closing(enum.Enum):
    """What a professional's message to a patient closes (rule 4)."""

    NONE = "none"
    CONVERSATION = "conversation"
    """The conversation the message belongs to (the thread it answers, or the one it starts)."""
    ALL_WITH_SENDER = "all-with-sender"
    """Every thread of the patient with that professional."""


FIN_SUBJECT = "[FIN]"


def closing(subject: str, fin_header: bool = False, *, answers_thread: bool = False) -> Closing:
    """Whether a professional's message closes the patient's replies, and how far.

    The one rule every path uses: delivery (which closes) and the webmail (which shows it).

    - ``X-MSS-MES: FIN``, or a subject that starts with ``[FIN]`` (``[FIN] Résultats de votre
      prise de sang``): closes the conversation the message belongs to.
    - A subject of exactly ``[FIN]`` (the national convention, ../shared/domain/README.md §3)
      that answers no thread closes every earlier thread with that professional; when it
      answers a thread (In-Reply-To/References), it closes that thread only.

    Surrounding white space and letter case are ignored.
    """
    text = " ".join(subject.split()).upper()
    if text == FIN_SUBJECT:
        return Closing.CONVERSATION if answers_thread else Closing.ALL_WITH_SENDER
    if text.startswith(FIN_SUBJECT) or fin_header:
        return Closing.CONVERSATION
    return Closing.NONE


@dataclass(frozen=True)
class Party:
    address: str
    kind: Kind
    status: str = "open"
    """Account status for local mailboxes (patients: pending/open/opposed/closed/suspended)."""
    bal_type: str | None = None
    shredded: bool = False
    """A local mailbox whose data key was destroyed: nothing can be filed in it any more."""


@dataclass(frozen=True)
class ConversationFacts:
    """The conversation a patient's message replies in."""

    closed: bool
    parties: frozenset[str]
    patient_address: str


@dataclass(frozen=True)
class Facts:
    size: int = 0
    conversation: ConversationFacts | None = None
    pharmacies: frozenset[str] = field(default_factory=frozenset)
    """ORG pharmacy mailboxes the patient may write to first (dispensed in the past 12 months)."""
    receipt: bool = False
    """A ``SYSTEM`` message that is a receipt (RFC 8098: read or integration), not a delivery
    report: it goes only to a professional (the Disposition-Notification-To the professional
    gave), whatever the conversation's state (the patient cannot refuse it, national rule)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason

    @property
    def text(self) -> str:
        return REASON_TEXT[self.reason]


_ALLOW = Decision(True, Reason.ALLOWED)
_PATIENTS = (Kind.PATIENT, Kind.REMOTE_PATIENT)
_PROS = (Kind.PROFESSIONAL, Kind.REMOTE_PROFESSIONAL)


SYSTEM_RULES: dict[bool, frozenset[Kind]] = {
    # Facts.receipt -> the recipient kinds a SYSTEM message may reach (rule 7), after the checks
    # every sender gets (valid, known, open, not shredded, size).
    True: frozenset({Kind.PROFESSIONAL, Kind.REMOTE_PROFESSIONAL}),
    # A delivery report goes back to the message's sender, whoever it is.
    False: frozenset({Kind.PROFESSIONAL, Kind.REMOTE_PROFESSIONAL, Kind.PATIENT,
                      Kind.REMOTE_PATIENT}),
}
"""The rows of the policy table for the ``SYSTEM`` sender kind."""


def _deny(reason: Reason) -> Decision:
    return Decision(False, reason)


def decide(sender: Party, recipient: Party, facts: Facts) -> Decision:
    """Decide whether ``sender`` may send this message to ``recipient``."""
    # Recipient validity first: these answers are the same whoever sends.
    if recipient.kind is Kind.INVALID:
        return _deny(Reason.INVALID_ADDRESS)
    if recipient.kind is Kind.UNKNOWN_LOCAL:
        return _deny(Reason.UNKNOWN_RECIPIENT)
    if recipient.kind is Kind.OUTSIDE:
        return _deny(Reason.OUTSIDE_TRUST_SPACE)
    if sender.kind is Kind.OUTSIDE:
        return _deny(Reason.SENDER_OUTSIDE_TRUST_SPACE)
    if sender.kind in (Kind.INVALID, Kind.UNKNOWN_LOCAL):
        return _deny(Reason.SENDER_NOT_AUTHORISED)
    if sender.kind in (Kind.PROFESSIONAL, Kind.PATIENT) and (
            sender.status != "open" or sender.shredded):
        return _deny(Reason.SENDER_NOT_AUTHORISED)

    if recipient.shredded:
        return _deny(Reason.MAILBOX_SHREDDED)
    if recipient.kind is Kind.PATIENT:
        if recipient.status != "open":
            return _deny(Reason.RECIPIENT_NOT_OPEN)
        if facts.size > PATIENT_MAX_SIZE:
            return _deny(Reason.TOO_LARGE)
    elif recipient.kind is Kind.PROFESSIONAL and recipient.status != "open":
        return _deny(Reason.RECIPIENT_NOT_OPEN)

    if sender.kind in _PROS:
        return _ALLOW
    if sender.kind is Kind.SYSTEM:
        allowed = recipient.kind in SYSTEM_RULES[facts.receipt]
        return _ALLOW if allowed else _deny(Reason.RECEIPT_TO_NON_PROFESSIONAL)

    # The sender is a patient.
    if recipient.kind in _PATIENTS:
        return _deny(Reason.PATIENT_TO_PATIENT)
    if sender.kind is Kind.REMOTE_PATIENT:
        # The patient's own operator enforced the reply rules before relaying to us.
        return _ALLOW
    if recipient.address in facts.pharmacies and recipient.bal_type in (None, "ORG"):
        return _ALLOW
    conv = facts.conversation
    reply = can_reply(sender, conv)
    if not reply.allowed:
        return reply
    if conv is not None and recipient.address not in conv.parties:
        return _deny(Reason.NOT_A_PARTICIPANT)
    return _ALLOW


def can_reply(patient: Party, conversation: ConversationFacts | None) -> Decision:
    """May this local patient reply in ``conversation`` (rule 4)? The rule :func:`decide`
    enforces for a patient's reply, for the webmail to show (reply form or not).

    The recipients of the reply are checked by :func:`decide` (participants only).
    """
    if patient.status != "open" or patient.shredded:
        return _deny(Reason.SENDER_NOT_AUTHORISED)
    if conversation is None or conversation.patient_address != patient.address:
        return _deny(Reason.PATIENT_CANNOT_START)
    if conversation.closed:
        return _deny(Reason.CONVERSATION_CLOSED)
    return _ALLOW
