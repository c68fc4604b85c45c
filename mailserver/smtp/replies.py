"""SMTP replies as named constants, and the mapping from domain reasons to replies.

Codes: RFC 5321 4.2; enhanced status codes: RFC 3463 and the IANA registry (RFC 5248).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailserver.policy import Reason

__all__ = ["Reply", "for_reason", "name_of"]


@dataclass(frozen=True)
class Reply:
    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    def with_text(self, text: str) -> Reply:
        return Reply(self.code, self.status, text)


OK_SENDER = Reply(250, "2.1.0", "Sender OK")
OK_RCPT = Reply(250, "2.1.5", "Recipient OK")
OK_QUEUED = Reply(250, "2.0.0", "OK: message stored")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")  # RFC 4954 6
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address is not yours")
FROM_NOT_OWNED = Reply(550, "5.7.1", "From: header must be your own address")
SENDER_HEADER_NOT_OWNED = Reply(550, "5.7.1", "Sender: header must be your own address")
# RFC 5322 3.6: exactly one From:, at most one Sender:.
AUTHOR_FIELD_COUNT = Reply(550, "5.6.0", "A message has exactly one From: header and at most "
                                         "one Sender: header")
AUTHOR_FIELD_MALFORMED = Reply(550, "5.6.0", "Malformed address in the From: or Sender: header")
BARE_CR_IN_HEADER = Reply(550, "5.6.0", "Bare CR in the message header")  # RFC 5322 2.2
LOCAL_SENDER_INBOUND = Reply(550, "5.7.1", "Mail from our own domains must be submitted "
                                           "with authentication")
RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")  # RFC 5321 3.6.2: never an open relay
TOO_MANY_RCPTS = Reply(452, "4.5.3", "Too many recipients")  # RFC 5321 4.5.3.1.8
TOO_BIG = Reply(552, "5.3.4", "Message too big")  # RFC 1870 6.3
NO_RCPTS = Reply(554, "5.5.1", "No valid recipients")
TEMP_FAILURE = Reply(451, "4.3.0", "Temporary server error, try again later")
# RFC 5321 4.2.2 452 insufficient system storage; RFC 3463 4.3.1 mail system full.
STORAGE_FULL = Reply(452, "4.3.1", "Insufficient system storage, try again later")
BAD_SYNTAX = Reply(501, "5.1.7", "Bad address syntax")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_LOCKED = Reply(454, "4.7.0", "Too many failures, temporarily locked; try again later")
AUTH_NOT_ALLOWED = Reply(535, "5.7.8", "This account may not use mail clients "
                                       "(patients use the secure webmail)")
AUTH_SUCCESS = Reply(235, "2.7.0", "Authentication successful")

_BY_REASON: dict[Reason, Reply] = {
    Reason.INVALID_ADDRESS: Reply(553, "5.1.3", "Invalid address"),
    Reason.UNKNOWN_RECIPIENT: Reply(550, "5.1.1", "Unknown recipient: no such mailbox "
                                                  "(patient or professional unknown)"),
    Reason.RECIPIENT_NOT_OPEN: Reply(550, "5.2.1", "Mailbox closed: the recipient's account "
                                                   "is not open"),
    Reason.OUTSIDE_TRUST_SPACE: Reply(550, "5.7.1", "Recipient domain is outside the MSSante "
                                                    "trust space"),
    Reason.SENDER_OUTSIDE_TRUST_SPACE: Reply(550, "5.7.1", "Sender domain is outside the "
                                                           "MSSante trust space"),
    Reason.SENDER_NOT_AUTHORISED: Reply(550, "5.7.1", "Sender is not authorised to send"),
    Reason.PATIENT_TO_PATIENT: Reply(550, "5.7.1", "Patients cannot write to patients"),
    Reason.PATIENT_CANNOT_START: Reply(550, "5.7.1", "A patient may only reply in a "
                                                     "conversation a professional started"),
    Reason.CONVERSATION_CLOSED: Reply(550, "5.7.1", "The professional closed this "
                                                    "conversation to replies"),
    Reason.NOT_A_PARTICIPANT: Reply(550, "5.7.1", "Recipient is not a participant of the "
                                                  "conversation"),
    Reason.TOO_LARGE: Reply(552, "5.3.4", "Message exceeds the 25 MB limit for patients"),
    # RFC 3463 X.2.1: mailbox disabled, not accepting messages (permanent).
    Reason.MAILBOX_SHREDDED: Reply(550, "5.2.1", "Mailbox disabled: its data has been "
                                                 "destroyed"),
}


def for_reason(reason: Reason) -> Reply:
    return _BY_REASON.get(reason, Reply(550, "5.7.1", "Refused by policy"))


def _names() -> tuple[dict[str, str], dict[str, str]]:
    exact = {str(r): name for name, r in globals().items()
             if isinstance(r, Reply) and name.isupper()}
    exact.update({str(r): reason.name for reason, r in _BY_REASON.items()})
    by_code: dict[str, list[str]] = {}
    for text, name in exact.items():
        by_code.setdefault(text[:9], []).append(name)
    return exact, {code: names[0] for code, names in by_code.items() if len(names) == 1}


_EXACT, _BY_CODE = _names()


def name_of(reply: str) -> str:
    """The name of a reply sent (``UNKNOWN_RECIPIENT``, ``STORAGE_FULL``...), for metrics: a
    known reply by its text, else by its code and status when only one reply has them, else
    ``<code>_<status>``."""
    return _EXACT.get(reply) or _BY_CODE.get(reply[:9]) or reply[:9].replace(" ", "_")
