"""Resource limits and refusal reasons shared by the attachment readers.

Theory of operation: every reader in this package takes untrusted bytes and a `Limits`. Instead of
raising on bad or hostile input it returns a result carrying a `Refusal` (a `Reason` plus a short
English text meant for logs and operators, never containing document content or patient ids).
Exceptions escaping to callers are bugs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Limits", "Reason", "Refusal"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied while reading untrusted messages, archives, XML and PDF.

    The defaults fit MSSanté traffic: mail to a patient is capped at 25 MB in total, so decoded
    content above 32 MiB is never legitimate.
    """

    # --- MIME (attachments.mime) ---
    max_message_bytes: int = 48 * _MIB
    """Raw message size accepted by `extract` (base64 inflates content by 4/3)."""
    max_total_decoded: int = 32 * _MIB
    """Sum of the decoded sizes of all extracted parts."""
    max_parts: int = 256
    """Number of MIME entities (leaves and containers) walked."""
    max_depth: int = 8
    """Nesting depth of multipart and message/rfc822 containers (top level is depth 0)."""
    max_body_text: int = 64 * 1024
    """Characters of the text/plain body kept in `Extraction.body_text`."""

    # --- ZIP (attachments.xdm) ---
    max_zip_members: int = 256
    """Members in one archive (an XDM zip holds a handful)."""
    max_member_size: int = 32 * _MIB
    """Uncompressed size of one member."""
    max_total_uncompressed: int = 64 * _MIB
    """Uncompressed size of all members read from one archive."""
    max_compression_ratio: int = 100
    """Uncompressed/compressed ratio above which a member is a bomb (checked past `ratio_floor`)."""
    ratio_floor: int = 256 * 1024
    """Members below this size are never refused for their ratio (small files compress well)."""

    # --- XML (attachments.safexml) ---
    max_xml_bytes: int = 16 * _MIB
    """Size of one XML document (METADATA.XML or a CDA document) handed to the parser."""

    # --- PDF (attachments.pdftext) ---
    max_pdf_bytes: int = 32 * _MIB
    """PDFs above this size are not opened for text extraction."""
    max_pdf_pages: int = 4
    """Pages whose text is extracted for classification."""
    max_pdf_chars: int = 20_000
    """Characters of extracted text kept."""
    pdf_time_budget: float = 2.0
    """Seconds after which no further page is read (checked between pages)."""


class Reason(enum.Enum):
    """Why input (a message, an archive, a document) was refused or only partly read."""

    # Message level
    MESSAGE_TOO_LARGE = "message_too_large"
    DECODED_TOO_LARGE = "decoded_too_large"
    TOO_MANY_PARTS = "too_many_parts"
    TOO_DEEP = "too_deep"
    MALFORMED_MESSAGE = "malformed_message"
    # Archive level
    NOT_A_ZIP = "not_a_zip"
    NOT_XDM = "not_xdm"
    TOO_MANY_MEMBERS = "too_many_members"
    ZIP_BOMB = "zip_bomb"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    UNSAFE_PATH = "unsafe_path"
    DUPLICATE_MEMBER = "duplicate_member"
    NESTED_ARCHIVE = "nested_archive"
    ENCRYPTED_MEMBER = "encrypted_member"
    CORRUPT_ARCHIVE = "corrupt_archive"
    # XML
    XML_TOO_LARGE = "xml_too_large"
    XML_FORBIDDEN = "xml_forbidden"
    """DTD, entity declaration or external reference: never present in CDA or ebRIM."""
    XML_MALFORMED = "xml_malformed"
    NOT_CDA = "not_cda"
    # Document level
    MISSING_DOCUMENT = "missing_document"
    HASH_MISMATCH = "hash_mismatch"
    SIZE_MISMATCH = "size_mismatch"
    INS_MISMATCH = "ins_mismatch"
    TYPE_MISMATCH = "type_mismatch"
    """The content is not what its declared type or file name says (a PDF pypdf cannot open,
    an image without its magic number, XML that does not parse)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal: machine-readable reason plus a short operator-facing text (no health data)."""

    reason: Reason
    text: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.text}"
