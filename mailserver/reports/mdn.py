"""Message disposition notifications (RFC 8098): read and integration receipts.

Theory of operation
-------------------
Two kinds of MDN leave this server:

* **read receipts**: a professional's message carried
  ``Disposition-Notification-To``; when the patient opens it the service
  sends, without asking (domain README 3)::

      Disposition: automatic-action/MDN-sent-automatically; displayed

* **integration receipts** for documents (domain README 5): ``processed`` on
  success, or ``processed/error`` with an ``Error: <code>^<text>`` field
  (RFC 8098 3.2.7) on failure, codes 900-906 (:class:`IntegrationError`).
  The parser also accepts the compact ``processed/Error: 902^...`` spelling
  inside the Disposition field.

The report is ``multipart/report; report-type=disposition-notification``
(RFC 6522): a French+English text part, ``message/disposition-notification``
with Reporting-UA, Original-Recipient, Final-Recipient,
Original-Message-ID and Disposition (RFC 8098 3.2), and the original
headers as ``text/rfc822-headers``. An MDN is sent with an empty envelope
sender (RFC 8098 2.1 / 3.3). :func:`parse_mdn` raises only
:class:`MdnParseError`.
"""

from __future__ import annotations

import email.utils
import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.header import Header
from email.message import Message

from mailserver.headers import decode_words, parse_headers
from mailserver.identifiers import is_valid_address, normalise_address
from mailserver.reports.mime import (
    WIRE,
    as_part,
    clean,
    get_field,
    headers_part,
    new_report,
    report_parts,
    strip_type,
    text_of,
    text_part,
    typed,
)

__all__ = [
    "Disposition",
    "IntegrationError",
    "Mdn",
    "MdnParseError",
    "ParsedMdn",
    "build_integration_receipt",
    "build_mdn",
    "build_read_receipt",
    "parse_mdn",
    "receipt_address",
]

class Disposition(enum.Enum):
    """RFC 8098 3.2.6.2 disposition types used here."""

    DISPLAYED = "displayed"
    PROCESSED = "processed"
    DELETED = "deleted"


class IntegrationError(enum.Enum):
    """Integration failure codes of the receipt (domain README 5): (code, fr, en)."""

    WRONG_VERSION = (900, "version non supportée", "unsupported version")
    AUTHOR_NOT_ALLOWED = (901, "auteur non autorisé", "author not allowed")
    UNKNOWN_PATIENT = (902, "patient inconnu", "unknown patient")
    NO_INS = (903, "INS absent", "no INS")
    INS_MISMATCH = (904, "INS incohérent", "INS mismatch")
    INCOMPLETE_INS = (905, "INS incomplet", "incomplete INS")
    OTHER = (906, "autre erreur", "other error")

    @property
    def code(self) -> int:
        """Numeric code (900-906)."""
        return self.value[0]

    @property
    def text_fr(self) -> str:
        """French label."""
        return self.value[1]

    @property
    def text_en(self) -> str:
        """English label."""
        return self.value[2]

    @classmethod
    def from_code(cls, code: int) -> IntegrationError | None:
        """The member with this code, or None."""
        return next((m for m in cls if m.code == code), None)


class MdnParseError(Exception):
    """The message is not a readable disposition-notification report."""


@dataclass(frozen=True, slots=True)
class Mdn:
    """An MDN ready to queue (empty envelope sender)."""

    envelope_sender: str
    envelope_recipient: str
    message: bytes


def _ascii(value: str) -> str:
    """Fold to ASCII: message/disposition-notification fields are 7-bit (RFC 8098 3.1)."""
    folded = unicodedata.normalize("NFKD", clean(value))
    return "".join(c for c in folded if c.isascii() and not unicodedata.combining(c))


def _texts(disposition: Disposition, final_recipient: str, error: tuple[int, str] | None
           ) -> tuple[str, str, str]:
    """(French text, English text, subject) of an MDN."""
    if disposition is Disposition.DISPLAYED:
        return (f"Le message envoyé à {final_recipient} a été ouvert par son destinataire.",
                f"The message sent to {final_recipient} has been opened by its recipient.",
                "Accusé de lecture / Read receipt")
    if error:
        return (f"Le document envoyé à {final_recipient} n'a pas pu être intégré : "
                f"erreur {error[0]} ({error[1]}).",
                f"The document sent to {final_recipient} could not be integrated: "
                f"error {error[0]}.",
                "Échec d'intégration / Integration failure")
    return (f"Le message envoyé à {final_recipient} a été traité.",
            f"The message sent to {final_recipient} has been processed.",
            "Accusé de traitement / Processing receipt")


def build_mdn(
    *,
    original: bytes,
    notify_to: str,
    final_recipient: str,
    reporting_ua: str,
    our_domain: str,
    disposition: Disposition,
    automatic: bool = True,
    error: tuple[int, str] | None = None,
    original_recipient: str | None = None,
    now: datetime | None = None,
) -> Mdn:
    """Build an RFC 8098 MDN about ``original``.

    Args:
        original: the original message (its headers are returned).
        notify_to: the ``Disposition-Notification-To`` address.
        final_recipient: the mailbox that disposed of the message.
        reporting_ua: ``Reporting-UA`` value (``host; product``).
        our_domain: domain used for the From and Message-ID.
        disposition: displayed / processed / deleted.
        automatic: automatic-action/MDN-sent-automatically (else manual).
        error: (code, text) for a ``processed/error`` receipt.
        original_recipient: the ``Original-Recipient`` header of the original, if any.
        now: report time (tests).

    Returns:
        The MDN to queue.
    """
    parsed = message_from_bytes(original, policy=WIRE)
    message_id = clean(str(parsed.get("Message-ID", ""))) or None
    subject = decode_words(clean(str(parse_headers(original).get("Subject", ""))))
    now = now or datetime.now(timezone.utc)

    mode = ("automatic-action/MDN-sent-automatically" if automatic
            else "manual-action/MDN-sent-manually")
    value = f"{mode}; {disposition.value}" + ("/error" if error else "")

    fr, en, title = _texts(disposition, final_recipient, error)
    report = new_report(
        "disposition-notification", our_domain=our_domain, to=notify_to,
        # A Header object (not a pre-encoded string), so the generator folds and encodes it once.
        subject=Header(title + (f" : {subject}" if subject else ""), "utf-8"),
        msgid_domain=our_domain, now=now,
    )
    if message_id:
        report["In-Reply-To"] = message_id
        report["References"] = message_id
    report["Auto-Submitted"] = "auto-replied"
    report.attach(text_part(f"{fr}\r\n\r\n{en}\r\n"))

    fields = Message(policy=policy.compat32)
    fields["Content-Type"] = "message/disposition-notification"
    body = [f"Reporting-UA: {_ascii(reporting_ua)}"]
    if original_recipient:
        body.append(f"Original-Recipient: {typed(original_recipient, 'rfc822')}")
    body.append(f"Final-Recipient: {typed(final_recipient, 'rfc822')}")
    if message_id:
        body.append(f"Original-Message-ID: {message_id}")
    body.append(f"Disposition: {value}")
    if error:
        body.append(f"Error: {error[0]}^{_ascii(error[1])}")
    fields.set_payload("\r\n".join(body) + "\r\n")
    report.attach(fields)

    report.attach(headers_part(original))
    return Mdn("", clean(notify_to), report.as_bytes(policy=WIRE))


def receipt_address(value: str) -> str | None:
    """The address a ``Disposition-Notification-To`` value asks receipts to go to, or None.

    The one RFC 8098 address parser of the server (read and integration receipts). Several
    addresses give None: RFC 8098 2.1 says to ask the user then, and we never do, so we do not
    send. An unusable address gives None too.
    """
    pairs = [a for _, a in email.utils.getaddresses([value])] if value else []
    if len(pairs) != 1 or not pairs[0]:
        return None
    address = normalise_address(pairs[0])
    return address if is_valid_address(address) else None


def build_read_receipt(
    original: bytes, *, notify_to: str, final_recipient: str, reporting_ua: str,
    our_domain: str, now: datetime | None = None,
) -> Mdn:
    """The automatic ``displayed`` MDN sent when a patient opens a message."""
    return build_mdn(
        original=original, notify_to=notify_to, final_recipient=final_recipient,
        reporting_ua=reporting_ua, our_domain=our_domain, disposition=Disposition.DISPLAYED,
        now=now,
    )


def build_integration_receipt(
    original: bytes, *, notify_to: str, final_recipient: str, reporting_ua: str,
    our_domain: str, error: IntegrationError | None = None, detail: str | None = None,
    now: datetime | None = None,
) -> Mdn:
    """``processed`` on success, or ``processed/error`` with ``Error: <code>^<text>``."""
    err = None
    if error is not None:
        err = (error.code, detail or error.text_fr)
    return build_mdn(
        original=original, notify_to=notify_to, final_recipient=final_recipient,
        reporting_ua=reporting_ua, our_domain=our_domain, disposition=Disposition.PROCESSED,
        error=err, now=now,
    )


@dataclass(frozen=True, slots=True)
class ParsedMdn:
    """A parsed MDN.

    Attributes:
        disposition: ``displayed``, ``processed``...
        automatic: action mode was automatic-action.
        modifiers: e.g. ``("error",)``.
        error_code: integration error code, if any; error_text: its text.
    """

    reporting_ua: str | None
    original_recipient: str | None
    final_recipient: str
    original_message_id: str | None
    disposition: str
    automatic: bool
    modifiers: tuple[str, ...]
    error_code: int | None
    error_text: str | None
    human_text: str


_DISPOSITION_RE = re.compile(
    r"^\s*(?P<action>[\w-]+)/(?P<sending>[\w-]+)\s*;\s*(?P<type>[\w-]+)"
    r"(?:\s*/\s*(?P<mods>.*))?$", re.DOTALL,
)
_ERROR_RE = re.compile(r"^\s*(\d{3})\s*\^\s*(.*)$", re.DOTALL)


def parse_mdn(data: bytes) -> ParsedMdn:
    """Parse a ``multipart/report; report-type=disposition-notification``.

    Raises:
        MdnParseError: not such a report, or Final-Recipient/Disposition missing.
    """
    try:
        return _parse(data)
    except MdnParseError:
        raise
    except Exception as exc:  # the stdlib parser's many failure modes
        raise MdnParseError("unreadable MDN") from exc


def _parse(data: bytes) -> ParsedMdn:
    parts = report_parts(data, "disposition-notification", MdnParseError)
    part = next((p for p in parts
                 if p.get_content_type() == "message/disposition-notification"), None)
    if part is None:
        raise MdnParseError("no message/disposition-notification part")
    inner = part.get_payload()
    # The stdlib parses any message/* subtype other than delivery-status as
    # one embedded message: the MDN fields arrive as its header block.
    if isinstance(inner, list) and inner:
        fields = as_part(inner[0], MdnParseError)
    elif isinstance(inner, str):
        fields = message_from_bytes(
            inner.lstrip("\r\n").encode("utf-8", "surrogateescape"), policy=policy.compat32
        )
    else:
        raise MdnParseError("disposition fields unreadable")
    final = get_field(fields, "Final-Recipient")
    disp = get_field(fields, "Disposition")
    if not final or not disp:
        raise MdnParseError("Final-Recipient and Disposition are required")
    match = _DISPOSITION_RE.match(" ".join(disp.split()))
    if match is None:
        raise MdnParseError("malformed Disposition")
    mods_text = match.group("mods") or ""
    error_code: int | None = None
    error_text: str | None = None
    modifiers: list[str] = []
    if mods_text:
        head, _, tail = mods_text.partition(":")
        modifiers = [m.strip().lower() for m in head.split(",") if m.strip()]
        if tail:  # compact "processed/Error: 902^text" spelling
            found = _ERROR_RE.match(tail)
            if found:
                error_code, error_text = int(found.group(1)), found.group(2).strip()
    error_field = get_field(fields, "Error")
    if error_field is not None:
        found = _ERROR_RE.match(" ".join(error_field.split()))
        if found:
            error_code, error_text = int(found.group(1)), found.group(2).strip()
    return ParsedMdn(
        reporting_ua=get_field(fields, "Reporting-UA"),
        original_recipient=strip_type(get_field(fields, "Original-Recipient")),
        final_recipient=strip_type(final) or "",
        original_message_id=get_field(fields, "Original-Message-ID"),
        disposition=match.group("type").lower(),
        automatic=match.group("action").lower() == "automatic-action",
        modifiers=tuple(modifiers),
        error_code=error_code,
        error_text=error_text,
        human_text=text_of(parts[0]),
    )
