"""Who may see which document of a patient's record (pure: no I/O).

Theory of operation (domain README section 6, 2023 decree, our reading in access-matrix.csv):

* the **patient** sees every document of their record except those flagged
  ``INVISIBLE_PATIENT`` (not shown yet, e.g. awaiting an announcement consultation);
* the **treating doctor** (médecin traitant) sees everything, masked documents included, and
  needs no consent: they cannot be blocked;
* any **other professional** sees a document only when (1) the patient consented for a care team
  or an establishment the professional belongs to (consent is never per professional), (2) the
  document is not masked (``MASQUE_PS``), and (3) the profession × label matrix allows the label;
* a professional without consent may still **add** documents, but sees none, not even their own
  (our choice: the decree ties reading to consent, not to authorship);
* the **medical profile** ("Profil médical") is read and added to over ``/fhir`` by the
  treating doctor, and by a consented professional whose profession may read the
  ``SYNTHESE`` label ("Ma santé en résumé": the profile is the patient's health summary, our
  reading), or a consented APP or ORG mailbox without a profession (software or an organisation
  acting for its structure); never without consent, whatever the rubric;
* the patient edits (relabels) or deletes only documents they added; they may also relabel a
  document flagged for review (low-confidence classification), and mask/unmask any document.

The tables below are copies of professions.csv and access-matrix.csv (no run-time dependency on
/work/shared); ``tests/bridge/test_access.py`` checks them against the CSV files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from attachments.labels import Label

__all__ = [
    "ACCESS_MATRIX",
    "PROFESSIONS",
    "Viewer",
    "ViewerRole",
    "DocFacts",
    "may_read",
    "may_see_label",
    "may_relabel",
    "may_delete",
    "readable_labels",
    "PROFILE_LABEL",
    "may_use_profile",
]

PROFESSIONS: dict[str, str] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-lunetier",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
    "81": "Orthoprothésiste",
    "82": "Podo-orthésiste",
    "83": "Orthopédiste-orthésiste",
    "84": "Oculariste",
    "85": "Épithésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "93": "Psychologue",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur d'électroradiologie médicale",
}
"""TRE_G15 profession code -> French name (professions.csv)."""

_COLUMNS = ("RADIO_SC", "SYNTHESE", "ORD_SOIN", "CPT_REND", "BIOLOGIE", "DEPISTAG", "CERT_MED",
            "AUTR_DOC")
_ROWS = {
    "10": "YYYYYYYY",
    "21": "NYYYYYNN",
    "26": "NNYNNNNN",
    "28": "NNYNNNNN",
    "40": "YYYYYYYY",
    "50": "YYYYYYYY",
    "60": "NYYYYYNN",
    "69": "NYYYYYNN",
    "70": "YYYYNNNN",
    "80": "YYYYNNNN",
    "81": "NNYNNNNN",
    "82": "NNYNNNNN",
    "83": "NNYNNNNN",
    "84": "NNYNNNNN",
    "85": "NNYNNNNN",
    "86": "NNYNYNNN",
    "91": "NYYYNNNN",
    "92": "NYYYNNNN",
    "93": "NYNYNNNN",
    "94": "NYYYNNNN",
    "95": "NYYYNNNN",
    "96": "NYYYNNNN",
    "98": "YNYNNNNN",
}
ACCESS_MATRIX: dict[str, frozenset[Label]] = {
    profession: frozenset(Label(col) for col, flag in zip(_COLUMNS, row, strict=True)
                          if flag == "Y")
    for profession, row in _ROWS.items()
}
"""Profession code -> labels that profession may read (access-matrix.csv)."""


class ViewerRole(enum.Enum):
    """How the viewer relates to the patient's record."""

    PATIENT = "patient"
    """The record's holder."""
    TREATING_DOCTOR = "treating_doctor"
    """The patient's médecin traitant."""
    CONSENTED = "consented"
    """A professional of a care team or establishment the patient consented for."""
    NO_CONSENT = "no_consent"
    """A professional without consent: may add, sees nothing."""
    OTHER = "other"
    """Anyone else (another patient, an unknown account)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The facts about a viewer that access decisions need."""

    role: ViewerRole
    account_id: int
    profession: str | None = None


@dataclass(frozen=True, slots=True)
class DocFacts:
    """The facts about a document that access decisions need."""

    label: Label
    masked: bool
    hidden_from_patient: bool
    added_by_patient: bool
    needs_review: bool


def may_see_label(profession: str | None, label: Label) -> bool:
    """True when the profession × label matrix allows ``label`` for ``profession``."""
    return label in ACCESS_MATRIX.get(profession or "", frozenset())


def readable_labels(profession: str | None) -> frozenset[Label]:
    """The labels a profession may read (empty for unknown professions)."""
    return ACCESS_MATRIX.get(profession or "", frozenset())


def may_read(viewer: Viewer, doc: DocFacts) -> bool:
    """Whether ``viewer`` may list and read ``doc``."""
    if viewer.role is ViewerRole.PATIENT:
        return not doc.hidden_from_patient
    if viewer.role is ViewerRole.TREATING_DOCTOR:
        return True
    if viewer.role is ViewerRole.CONSENTED:
        return not doc.masked and may_see_label(viewer.profession, doc.label)
    return False


def may_relabel(viewer: Viewer, doc: DocFacts) -> bool:
    """The patient relabels documents they added, and documents flagged for review."""
    return viewer.role is ViewerRole.PATIENT and (doc.added_by_patient or doc.needs_review)


def may_delete(viewer: Viewer, doc: DocFacts) -> bool:
    """Only the patient, and only documents they added."""
    return viewer.role is ViewerRole.PATIENT and doc.added_by_patient


PROFILE_LABEL = Label.SYNTHESE
"""The label whose readers may read and add to the medical profile (see the module docstring)."""


def may_use_profile(viewer: Viewer, bal_type: str | None = None) -> bool:
    """Whether a professional (or an APP/ORG mailbox, ``bal_type``) may read the patient's
    medical profile and add entries to it."""
    if viewer.role is ViewerRole.TREATING_DOCTOR:
        return True
    if viewer.role is not ViewerRole.CONSENTED:
        return False
    if viewer.profession is None:
        return bal_type in ("APP", "ORG")
    return may_see_label(viewer.profession, PROFILE_LABEL)
