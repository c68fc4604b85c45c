"""IHE XDM archives: ``read_xdm`` and ``analyse_attachment`` (ITI-65 Binary) never raise."""

from __future__ import annotations

from attachments import Limits, analyse_attachment, read_xdm

LIMITS = Limits(max_pdf_pages=2, pdf_time_budget=0.5)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    result = read_xdm(data, LIMITS)
    assert result.refusal is None or result.refusal.text
    analyse_attachment(data, "application/zip", "IHE_XDM.ZIP", limits=LIMITS)
