"""Bounded PDF text extraction (pypdf) for content classification.

Only the first `Limits.max_pdf_pages` pages are read, the time budget is checked between pages, and
any pypdf failure yields the text gathered so far: a PDF that cannot be read is classified from its
filename and the subject instead.
"""

from __future__ import annotations

import io
import logging
import time

from attachments.limits import Limits

__all__ = ["is_pdf", "pdf_opens", "pdf_text"]


def is_pdf(data: bytes) -> bool:
    """PDF magic number within the first 1 KiB (ISO 32000-1 7.5.2 tolerates leading bytes)."""
    return b"%PDF-" in data[:1024]


def pdf_opens(data: bytes, limits: Limits = Limits()) -> bool:  # noqa: B008 - frozen default
    """Whether pypdf reads the document as a PDF with at least one page (never raises).

    Bytes merely named ``.pdf``, or a ``%PDF-`` header on garbage, are not a PDF.
    """
    if len(data) > limits.max_pdf_bytes or not is_pdf(data):
        return False
    pypdf_logger = logging.getLogger("pypdf")
    previous = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data), strict=False)
        return reader.is_encrypted or len(reader.pages) > 0
    except Exception:  # noqa: BLE001 - pypdf raises many types (and RecursionError)
        return False
    finally:
        pypdf_logger.setLevel(previous)


def pdf_text(data: bytes, limits: Limits = Limits()) -> str:  # noqa: B008 - frozen default
    """Return the text of the first pages of a PDF, or "" when none can be extracted.

    Args:
        data: PDF bytes.
        limits: `max_pdf_bytes`, `max_pdf_pages`, `max_pdf_chars`, `pdf_time_budget`.

    Returns:
        Extracted text (possibly empty, e.g. for scanned documents), never raises.
    """
    if len(data) > limits.max_pdf_bytes or not is_pdf(data):
        return ""
    # pypdf logs warnings about damaged files at WARNING; they may quote content, keep them quiet.
    pypdf_logger = logging.getLogger("pypdf")
    previous = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    deadline = time.monotonic() + limits.pdf_time_budget
    chunks: list[str] = []
    total = 0
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return ""
        for index, page in enumerate(reader.pages):
            if index >= limits.max_pdf_pages or time.monotonic() > deadline:
                break
            text = page.extract_text() or ""
            chunks.append(text)
            total += len(text)
            if total >= limits.max_pdf_chars:
                break
    except Exception:  # noqa: BLE001, S110 - pypdf raises many types (and RecursionError)
        pass
    finally:
        pypdf_logger.setLevel(previous)
    return "\n".join(chunks)[: limits.max_pdf_chars]
