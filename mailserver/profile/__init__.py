"""The patient's medical profile ("Profil médical"): its 9 rubrics, their fields, the
measures and the validation of an entry. Pure: no I/O, no clock (the day is passed in).

The entries themselves are stored, sealed, by ``dossier_bridge.profile_store``; the webmail
and ``/api/profile`` show and change them through the ``PatientProfile`` seam.
"""

from mailserver.profile.fields import EntryInvalid, Field, FieldKind, display, fr_date, fr_number
from mailserver.profile.measures import (
    MEASURE_KINDS,
    MEASURES,
    MeasureKind,
    describe_measure,
    imc,
    latest_imc,
)
from mailserver.profile.rubrics import (
    RESERVED,
    RUBRIC_SLUGS,
    RUBRICS,
    Rubric,
    Variant,
    details,
    headline,
    rubric,
    sort_key,
    validate,
)

__all__ = ["EntryInvalid", "Field", "FieldKind", "display", "fr_date", "fr_number",
           "MEASURE_KINDS", "MEASURES", "MeasureKind", "describe_measure", "imc", "latest_imc",
           "RESERVED", "RUBRIC_SLUGS", "RUBRICS", "Rubric", "Variant", "details", "headline",
           "rubric", "sort_key", "validate"]
