"""IHE XDM archives: ``read_xdm`` and ``analyse_attachment`` (ITI-65 Binary) never raise.

An input starting with ``PK`` is read as the archive itself. Anything else is taken as the
``METADATA.XML`` of an otherwise valid archive (with one CDA document beside it): mutated zip
bytes mostly fail their CRC, so the ebRIM reader is reached this way.
"""

from __future__ import annotations

import io
import zipfile

from attachments import Limits, analyse_attachment, read_xdm
from tests.attachments.corpus import make_cda

LIMITS = Limits(max_pdf_pages=2, pdf_time_budget=0.5)
_CDA = make_cda()


def _archive(metadata: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
        zf.writestr("IHE_XDM/SUBSET01/DOC0001.XML", _CDA)
    return buf.getvalue()


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    archive = data if data.startswith(b"PK") else _archive(data)
    result = read_xdm(archive, LIMITS)
    assert result.refusal is None or result.refusal.text
    analyse_attachment(archive, "application/zip", "IHE_XDM.ZIP", limits=LIMITS)
