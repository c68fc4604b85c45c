"""Building blocks shared by the RFC 6522 ``multipart/report`` messages we send and read.

Delivery status notifications (:mod:`.dsn`, RFC 3464) and message disposition
notifications (:mod:`.mdn`, RFC 8098) are both ``multipart/report``
(RFC 6522): a human-readable text part, a machine-readable ``message/*``
part and the original message or its headers. This module holds what both
build and parse the same way; each report type keeps its own fields.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import message_from_bytes, policy
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

__all__ = [
    "WIRE",
    "as_part",
    "clean",
    "get_field",
    "header_block",
    "headers_part",
    "new_report",
    "report_parts",
    "strip_type",
    "text_of",
    "text_part",
    "typed",
]

WIRE = policy.compat32.clone(linesep="\r\n")
"""The policy reports are serialised with: compat32, CRLF line endings (RFC 5322 2.1)."""

_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable, 7-bit safe text parts

_TYPED_RE = re.compile(r"^[A-Za-z0-9-]+;")


def clean(value: str) -> str:
    """Fold CR/LF and runs of white space to single spaces (no header injection)."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def typed(value: str, default_type: str) -> str:
    """Prefix an RFC 3464/8098 type (``rfc822;``, ``smtp;``) unless one is present."""
    value = clean(value)
    return value if _TYPED_RE.match(value) else f"{default_type}; {value}"


def strip_type(value: str | None) -> str | None:
    """The value of a typed field without its ``type;`` prefix."""
    if value is None:
        return None
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def header_block(original: bytes) -> str:
    """The header section of ``original`` (up to its blank line), as text with LF endings."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = original.find(sep)
        if end >= 0:
            original = original[: end + len(sep)]
            break
    return original.decode("utf-8", "replace").replace("\r\n", "\n")


# --- building ------------------------------------------------------------------------


def new_report(
    report_type: str, *, our_domain: str, to: str, subject: str | Header,
    msgid_domain: str, now: datetime,
) -> MIMEMultipart:
    """An empty ``multipart/report`` from ``MAILER-DAEMON@our_domain`` to ``to``.

    The caller adds any further header fields, then the parts.
    """
    report = MIMEMultipart("report", report_type=report_type)
    report["From"] = f"MAILER-DAEMON@{our_domain}"
    report["To"] = clean(to)
    report["Subject"] = subject  # type: ignore[assignment]  # compat32 folds a Header on output
    report["Date"] = format_datetime(now)
    report["Message-ID"] = make_msgid(domain=msgid_domain)
    return report


def text_part(text: str) -> MIMEText:
    """The human-readable first part: UTF-8, quoted-printable."""
    return MIMEText(text, "plain", _UTF8_QP)  # type: ignore[arg-type]  # stub: str only


def headers_part(original: bytes) -> MIMEText:
    """The original's header section as ``text/rfc822-headers`` (RFC 6522 4)."""
    headers = header_block(original)
    charset = "us-ascii" if headers.isascii() else _UTF8_QP
    return MIMEText(headers, "rfc822-headers", charset)  # type: ignore[arg-type]


# --- parsing -------------------------------------------------------------------------


def as_part(value: object, error: type[Exception]) -> Message:
    """A MIME part from ``get_payload()``; anything else raises ``error``."""
    if not isinstance(value, Message):
        raise error("malformed MIME structure")
    return value


def report_parts(data: bytes, report_type: str, error: type[Exception]) -> list[Message]:
    """The parts of a ``multipart/report; report-type=<report_type>`` message.

    Raises:
        error: not such a report, or fewer than two parts.
    """
    msg = message_from_bytes(data, policy=policy.compat32)
    if msg.get_content_type() != "multipart/report" or (
        str(msg.get_param("report-type") or "") != report_type
    ):
        raise error(f"not a {report_type} report")
    payload = msg.get_payload()
    if not isinstance(payload, list) or len(payload) < 2:
        raise error("report has too few parts")
    return [as_part(p, error) for p in payload]


def text_of(part: Message) -> str:
    """Decoded text of a leaf part; unknown charsets fall back to UTF-8."""
    if part.is_multipart():
        return ""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    try:
        return raw.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def get_field(block: Message, name: str) -> str | None:
    """A header field of ``block`` as text, or None when absent."""
    value = block.get(name)
    return None if value is None else str(value)
