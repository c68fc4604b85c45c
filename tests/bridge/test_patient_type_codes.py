"""The type code of a document a patient adds: the label's DOCPAT code, or a class-90 code of
that label asked by the caller (the profile synthesis: DOCPAT08), never a code of another
label or class."""

from __future__ import annotations

import pytest

from attachments.labels import Label
from dossier_bridge.store import _patient_type_code


@pytest.mark.parametrize(("label", "asked", "expected"), [
    (Label.SYNTHESE, None, "DOCPAT01"),
    (Label.SYNTHESE, "DOCPAT08", "DOCPAT08"),
    (Label.BIOLOGIE, "DOCPAT08", "DOCPAT05"),   # DOCPAT08 is a SYNTHESE code
    (Label.SYNTHESE, "34133-9", "DOCPAT01"),    # a professional's type, not class 90
    (Label.SYNTHESE, "NOPE", "DOCPAT01"),
    (Label.AUTR_DOC, "", "DOCPAT09"),
])
def test_patient_type_code(label: Label, asked: str | None, expected: str) -> None:
    assert _patient_type_code(label, asked) == expected
