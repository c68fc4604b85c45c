"""The MIME walker and classifier: ``attachments.analyse_message`` never raises."""

from __future__ import annotations

from attachments import Limits, analyse_message

LIMITS = Limits(max_pdf_pages=2, pdf_time_budget=0.5)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    analysis = analyse_message(data, LIMITS)
    assert sum(doc.size for doc in analysis.documents) <= LIMITS.max_total_decoded
