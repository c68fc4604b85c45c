"""MIME walk: a raw RFC 5322 message in, its attachments and MSSanté facts out.

Theory of operation: the stdlib `email` parser (policy `email.policy.default`) builds the tree; we
walk it depth first, numbering entities the IMAP way (RFC 3501 6.4.5 BODY[section]): the children of
a multipart are 1, 2, ...; the body of an encapsulated message/rfc822 takes the number of the
message part itself when it is multipart (its children become n.1, n.2) and n.1 otherwise.
Encapsulated messages are walked into, they are not yielded as parts themselves.

A leaf is an attachment when it has a filename, a `Content-Disposition: attachment` (RFC 2183), or a
type other than text/plain, text/html, text/enriched; the first text/plain leaf that is not an
attachment is the body text.
Decoding (RFC 2045 6: base64, quoted-printable, 7bit/8bit/binary; x-uuencode) is done by
`Message.get_payload(decode=True)`; filenames come from `get_filename()`, which handles RFC 2231
parameters and RFC 2047 encoded words.

Limits (raw size, entity count, depth, decoded size) stop the walk; what was gathered before stays
in the result and `refusal` says why the walk stopped. No exception escapes for bad input.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from attachments.limits import Limits, Reason, Refusal

__all__ = ["Extraction", "MessageFacts", "Part", "extract", "sanitise_filename"]

_MAX_FILENAME_BYTES = 200
# Lines starting with "--" allowed per permitted part (each part has one delimiter; text bodies and
# signatures ("-- ") add a few more) before the message is refused without being parsed.
_DELIMITER_FACTOR = 4
_DELIMITER_SLACK = 1024
# Characters refused by common filesystems, plus path separators (RFC 2183 2.3: "the receiving MUA
# SHOULD NOT respect any directory path information").
_BAD_FILENAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


@dataclass(frozen=True, slots=True)
class Part:
    """One decoded attachment."""

    path: str
    """IMAP-style section number, e.g. "2" or "3.1" (RFC 3501 6.4.5)."""
    filename: str
    """Sanitised base name (no directory, no control characters); generated when absent."""
    content_type: str
    """Declared media type, lower case (e.g. "application/pdf")."""
    content: bytes = field(repr=False)
    """Decoded content (transfer encoding removed)."""
    sha256: str
    """Hex SHA-256 of `content`."""
    declared_filename: bool
    """False when `filename` was generated because the part carried none."""

    @property
    def size(self) -> int:
        """Decoded size in bytes."""
        return len(self.content)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """Top-level header facts the dossier bridge needs (domain README section 5)."""

    subject: str = ""
    from_addr: str = ""
    message_id: str = ""
    codes_cda: tuple[str, ...] = ()
    """X-MSS-CODECDA: CDA document codes announced in the archive (comma-separated header)."""
    mss_ins: str | None = None
    """X-MSS-INS: "O" (qualified INS in the archive) or "N"; None when absent or invalid."""
    mss_nil: str | None = None
    """X-MSS-NIL: sending software reference."""
    disposition_notification_to: str | None = None
    """Disposition-Notification-To (RFC 8098): integration receipt requested when set."""


@dataclass(frozen=True, slots=True)
class Extraction:
    """Result of `extract`: parts, header facts, body text, and why the walk stopped early."""

    parts: tuple[Part, ...] = ()
    facts: MessageFacts = MessageFacts()
    body_text: str = ""
    refusal: Refusal | None = None

    @property
    def complete(self) -> bool:
        """True when the whole message was walked."""
        return self.refusal is None


class _Stop(Exception):
    """Internal: a limit was hit; carries the refusal."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)
        self.refusal = refusal


def _clean_header(value: object, limit: int = 998) -> str:
    # RFC 5322 2.1.1: 998 characters per line; drop control characters so values are log-safe.
    text = str(value) if value is not None else ""
    text = "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in text)
    return " ".join(text.split())[:limit]


def _header(msg: Message, name: str) -> str | None:
    try:
        values = msg.get_all(name)
    except Exception:  # noqa: BLE001 - header parsing of hostile input
        return None
    if not values:
        return None
    return _clean_header(values[0])


def _facts(msg: Message) -> MessageFacts:
    codes: list[str] = []
    try:
        for value in msg.get_all("X-MSS-CODECDA") or []:
            for code in _clean_header(value).split(","):
                code = code.strip()
                if code and code not in codes:
                    codes.append(code)
    except Exception:  # noqa: BLE001
        codes = []
    ins = (_header(msg, "X-MSS-INS") or "").strip().upper()
    return MessageFacts(
        subject=_header(msg, "Subject") or "",
        from_addr=_header(msg, "From") or "",
        message_id=_header(msg, "Message-ID") or "",
        codes_cda=tuple(codes),
        mss_ins=ins if ins in ("O", "N") else None,
        mss_nil=_header(msg, "X-MSS-NIL"),
        disposition_notification_to=_header(msg, "Disposition-Notification-To"),
    )


def sanitise_filename(name: str | None, content_type: str, path: str) -> tuple[str, bool]:
    """Return a safe base name for an attachment and whether it came from the message.

    Directory components (either separator), control and reserved characters are removed, the
    name is NFC-normalised, leading dots are dropped and the length is capped (keeping the
    extension). An empty result is replaced by ``part-<path><ext>``, the extension guessed from
    the type.

    Args:
        name: filename as decoded from the message, or None.
        content_type: the part's media type, used for a generated name.
        path: the part's section number, used for a generated name.
    """
    cleaned = ""
    if name:
        base = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
        base = _BAD_FILENAME_CHARS.sub("_", base).strip().lstrip(".").strip()
        if base.strip("_"):
            cleaned = base
        if len(cleaned.encode("utf-8", "replace")) > _MAX_FILENAME_BYTES:
            stem, dot, ext = cleaned.rpartition(".")
            if not dot or len(ext) > 10:
                stem, ext = cleaned, ""
            budget = _MAX_FILENAME_BYTES - len(ext.encode()) - 1
            stem = stem.encode("utf-8", "replace")[:budget].decode("utf-8", "ignore")
            cleaned = f"{stem}.{ext}" if ext else stem
    if cleaned:
        # Lone surrogates (from undecodable bytes) would break later UTF-8 encoding.
        return cleaned.encode("utf-8", "replace").decode("utf-8"), True
    ext = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return f"part-{path}{ext}", False


_BODY_TYPES = frozenset({"text/plain", "text/html", "text/enriched"})


def _is_attachment(part: Message, filename: str | None) -> bool:
    disposition = part.get_content_disposition()
    if disposition == "attachment" or filename:
        return True
    # Readable bodies stay bodies; any other type (text/xml CDA included) is a document.
    return part.get_content_type() not in _BODY_TYPES


class _Walker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parts: list[Part] = []
        self.entities = 0
        self.decoded = 0
        self.body_text: str | None = None

    def walk(self, node: Message, path: str, depth: int) -> None:
        self.entities += 1
        if self.entities > self.limits.max_parts:
            raise _Stop(Refusal(Reason.TOO_MANY_PARTS, f"more than {self.limits.max_parts} parts"))
        if node.is_multipart():
            if depth >= self.limits.max_depth:
                raise _Stop(
                    Refusal(Reason.TOO_DEEP, f"nesting deeper than {self.limits.max_depth}")
                )
            payload = node.get_payload()
            children = payload if isinstance(payload, list) else []
            if node.get_content_type() == "message/rfc822" or not _is_multipart_type(node):
                # message/rfc822 (RFC 2046 5.2.1): the payload is one encapsulated message.
                for child in children:
                    self._enter_message(child, path, depth + 1)
                return
            prefix = f"{path}." if path else ""
            for index, child in enumerate(children, start=1):
                if isinstance(child, Message):
                    self.walk(child, f"{prefix}{index}", depth + 1)
            return
        self._leaf(node, path or "1")

    def _enter_message(self, inner: object, path: str, depth: int) -> None:
        if not isinstance(inner, Message):
            return
        if depth >= self.limits.max_depth:
            raise _Stop(Refusal(Reason.TOO_DEEP, f"nesting deeper than {self.limits.max_depth}"))
        if inner.is_multipart():
            self.walk(inner, path, depth)
        else:
            self.entities += 1
            if self.entities > self.limits.max_parts:
                raise _Stop(Refusal(Reason.TOO_MANY_PARTS, f"more than {self.limits.max_parts}"))
            self._leaf(inner, f"{path}.1" if path else "1")

    def _leaf(self, node: Message, path: str) -> None:
        ctype = node.get_content_type().lower()
        try:
            raw_name = node.get_filename()
        except Exception:  # noqa: BLE001 - malformed RFC 2231 parameters
            raw_name = None
        if not _is_attachment(node, raw_name):
            if ctype == "text/plain" and self.body_text is None:
                self.body_text = _text_of(node)[: self.limits.max_body_text]
            return
        content = node.get_payload(decode=True)
        if not isinstance(content, bytes):
            content = b""
        self.decoded += len(content)
        if self.decoded > self.limits.max_total_decoded:
            raise _Stop(
                Refusal(
                    Reason.DECODED_TOO_LARGE,
                    f"decoded content exceeds {self.limits.max_total_decoded} bytes",
                )
            )
        filename, declared = sanitise_filename(raw_name, ctype, path)
        self.parts.append(
            Part(
                path=path,
                filename=filename,
                content_type=ctype,
                content=content,
                sha256=hashlib.sha256(content).hexdigest(),
                declared_filename=declared,
            )
        )


def _is_multipart_type(node: Message) -> bool:
    return node.get_content_maintype() == "multipart"


def _text_of(node: Message) -> str:
    data = node.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = node.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:  # unknown charset name
        return data.decode("utf-8", "replace")


def extract(raw: bytes, limits: Limits = Limits()) -> Extraction:  # noqa: B008 - frozen default
    """Walk a raw message and return its decoded attachments and header facts.

    Args:
        raw: the message as received (RFC 5322, CRLF or LF line endings).
        limits: bounds on raw size, entity count, nesting depth and decoded size.

    Returns:
        An `Extraction`. When a limit is hit or the message cannot be parsed, `refusal` is set and
        `parts` holds what was extracted before that point. Never raises for bad input.
    """
    if len(raw) > limits.max_message_bytes:
        return Extraction(
            refusal=Refusal(
                Reason.MESSAGE_TOO_LARGE, f"message exceeds {limits.max_message_bytes} bytes"
            )
        )
    # The stdlib parser costs ~0.1 ms per MIME entity before we can count them: bound the number
    # of lines that could be boundary delimiters (RFC 2046 5.1.1: "--" at line start) up front.
    delimiters = raw.count(b"\n--") + raw.startswith(b"--")
    if delimiters > _DELIMITER_FACTOR * limits.max_parts + _DELIMITER_SLACK:
        return Extraction(
            refusal=Refusal(Reason.TOO_MANY_PARTS, f"more than {limits.max_parts} parts")
        )
    try:
        msg = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
    except RecursionError:
        return Extraction(refusal=Refusal(Reason.TOO_DEEP, "message structure too deep to parse"))
    except Exception:  # noqa: BLE001 - the parser is lenient; this guards its rare failures
        return Extraction(refusal=Refusal(Reason.MALFORMED_MESSAGE, "message cannot be parsed"))
    facts = _facts(msg)
    walker = _Walker(limits)
    refusal: Refusal | None = None
    try:
        walker.walk(msg, "", 0)
    except _Stop as stop:
        refusal = stop.refusal
    except RecursionError:
        refusal = Refusal(Reason.TOO_DEEP, "message structure too deep to walk")
    except Exception:  # noqa: BLE001 - email package edge cases on hostile structure
        refusal = Refusal(Reason.MALFORMED_MESSAGE, "message structure cannot be walked")
    return Extraction(
        parts=tuple(walker.parts),
        facts=facts,
        body_text=walker.body_text or "",
        refusal=refusal,
    )
