"""CDA R2 headers: ``parse_cda`` returns a header or a ``Refusal``, never raises."""

from __future__ import annotations

from attachments import CdaHeader, Limits, Refusal, analyse_attachment, parse_cda

LIMITS = Limits(max_pdf_pages=2, pdf_time_budget=0.5)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    header = parse_cda(data, LIMITS)
    assert isinstance(header, CdaHeader | Refusal)
    analyse_attachment(data, "text/xml", "document.xml", limits=LIMITS)
