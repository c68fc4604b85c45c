"""The French wording of medical profile entries, shared by the synthesis PDF and the charts (pure).

Entries are the JSON objects of ``GET /api/profile`` (``{"rubrics": {"<slug>": [entries]}}``):
English snake_case fields, plus ``id``, ``added_by`` (a professional's or an application's
display name; null, or ``patient`` with ``added_by_kind`` ``patient``, when the patient added
the entry) and ``added_at``. Everything here is tolerant: a missing field
reads as empty, an unknown field is shown with its name, a date that does not parse is shown
as given. Display code never refuses what the store holds.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = [
    "RUBRICS",
    "author",
    "META_FIELDS",
    "MeasureKind",
    "MEASURE_KINDS",
    "measure_kind",
    "measure_label",
    "measure_unit",
    "measure_value",
    "measure_date",
    "parse_date",
    "french_date",
    "short_date",
    "number",
    "text",
    "first",
    "code_text",
    "field_label",
    "extras",
    "latin1",
]

RUBRICS: tuple[tuple[str, str], ...] = (
    ("maladies", "Maladies et sujets de santé"),
    ("historique-soins", "Historique de soins"),
    ("entourage-volontes", "Entourage et volontés"),
    ("allergies", "Allergies"),
    ("traitements", "Traitements"),
    ("vaccinations", "Vaccinations"),
    ("hospitalisations", "Hospitalisations et chirurgies"),
    ("mesures", "Mesures"),
    ("antecedents-familiaux", "Antécédents familiaux"),
)
"""The nine rubrics: the API's slug and the French title, in Mon Espace Santé's order."""

META_FIELDS = frozenset({
    "id", "added_by", "added_at", "updated_at", "updated_by", "edited_at", "edited_by",
    "added_by_kind", "author", "source_kind", "version",
})
"""Bookkeeping fields: never shown as an entry's content."""

_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")


@dataclass(frozen=True)
class MeasureKind:
    """One kind of measure: its French label and the unit used when an entry has none."""

    label: str
    unit: str


MEASURE_KINDS: dict[str, MeasureKind] = {
    "poids": MeasureKind("Poids", "kg"),
    "taille": MeasureKind("Taille", "cm"),
    "imc": MeasureKind("Indice de masse corporelle (IMC)", "kg/m²"),
    "tension": MeasureKind("Tension artérielle", "mmHg"),
    "frequence_cardiaque": MeasureKind("Fréquence cardiaque", "bpm"),
    "glycemie": MeasureKind("Glycémie", "g/L"),
    "temperature": MeasureKind("Température", "°C"),
    "douleur": MeasureKind("Niveau de douleur", "/10"),
    "saturation": MeasureKind("Saturation en oxygène", "%"),
    "perimetre_cranien": MeasureKind("Périmètre crânien", "cm"),
}
"""The typed measures, in display order (issue 12; LOINC codes in the domain README §12)."""

_KIND_ALIASES = {
    "tension_arterielle": "tension", "pression_arterielle": "tension", "blood_pressure": "tension",
    "fc": "frequence_cardiaque", "pouls": "frequence_cardiaque",
    "heart_rate": "frequence_cardiaque",
    "niveau_de_douleur": "douleur", "niveau_douleur": "douleur", "pain": "douleur",
    "saturation_oxygene": "saturation", "saturation_en_oxygene": "saturation",
    "spo2": "saturation", "weight": "poids", "height": "taille", "bmi": "imc",
    "glucose": "glycemie", "glycaemia": "glycemie", "body_temperature": "temperature",
    "head_circumference": "perimetre_cranien",
}

_FIELD_LABELS = {
    "notes": "Notes", "note": "Notes", "description": "Description", "comment": "Commentaire",
    "status": "Statut", "since": "Depuis", "date": "Date", "start": "Début", "end": "Fin",
    "start_date": "Début", "end_date": "Fin", "lot": "Lot", "dose": "Dose",
    "dose_number": "Dose n°", "frequency": "Fréquence", "prescriber": "Prescripteur",
    "route": "Voie", "reason": "Motif", "procedure": "Intervention",
    "establishment": "Établissement", "professional": "Professionnel", "kind": "Type",
    "relative": "Lien de parenté", "age_at_onset": "Âge au début", "phone": "Téléphone",
    "email": "Courriel", "address": "Adresse", "relationship": "Lien", "position": "Position",
    "document_id": "Document", "text": "Texte", "code": "Code", "code_system": "Système de codes",
    "severity": "Sévérité", "reaction": "Réaction", "source": "Source", "unit": "Unité",
}


def _plain(value: str) -> str:
    """Lower-case, unaccented, ``_`` for spaces and dashes: for matching names."""
    folded = unicodedata.normalize("NFKD", value.strip().lower())
    ascii_only = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return ascii_only.replace("-", "_").replace(" ", "_").replace("'", "_")


def measure_kind(kind: object) -> str:
    """The canonical kind of a measure's ``kind`` field (``"Fréquence cardiaque"`` →
    ``frequence_cardiaque``); an unknown kind comes back folded, never refused."""
    plain = _plain(str(kind or ""))
    return _KIND_ALIASES.get(plain, plain)


def measure_label(kind: object) -> str:
    """The French label of a measure kind; an unknown kind is shown as written."""
    known = MEASURE_KINDS.get(measure_kind(kind))
    if known is not None:
        return known.label
    raw = str(kind or "").strip().replace("_", " ").replace("-", " ")
    return raw[:1].upper() + raw[1:] if raw else "Mesure"


def measure_unit(entry: Mapping[str, Any]) -> str:
    """The entry's unit, else its kind's usual unit, else nothing."""
    unit = text(entry.get("unit"))
    if unit:
        return unit
    known = MEASURE_KINDS.get(measure_kind(entry.get("kind")))
    return known.unit if known else ""


def number(value: object) -> str:
    """A number the French way: ``72,5``, ``128``; anything else as text."""
    if isinstance(value, bool):
        return text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        shown = f"{value:.2f}".rstrip("0").rstrip(".")
        return shown.replace(".", ",")
    return text(value)


def measure_value(entry: Mapping[str, Any], *, with_unit: bool = True) -> str:
    """``72,5 kg``; a blood pressure as ``128/82 mmHg``."""
    if "systolic" in entry or "diastolic" in entry:
        shown = f"{number(entry.get('systolic'))}/{number(entry.get('diastolic'))}"
    else:
        shown = number(entry.get("value"))
    unit = measure_unit(entry) if with_unit else ""
    if not unit:
        return shown
    return f"{shown}{unit}" if unit.startswith("/") else f"{shown} {unit}"


def parse_date(value: object) -> date | None:
    """A ``date`` from an ISO date or date-time (string or object); None if it does not parse."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def measure_date(entry: Mapping[str, Any]) -> date | None:
    """When a measure was taken (``date``, else ``measured_at``, else ``added_at``)."""
    for key in ("date", "measured_at", "effective", "added_at"):
        day = parse_date(entry.get(key))
        if day is not None:
            return day
    return None


def french_date(day: date) -> str:
    """``12 mai 2025`` (``1er`` for the first of the month)."""
    first_day = "1er" if day.day == 1 else str(day.day)
    return f"{first_day} {_MONTHS[day.month - 1]} {day.year}"


def short_date(value: object) -> str:
    """``20/11/2026`` from an ISO date or date-time; ``05/2019`` and ``2019`` for partial dates;
    anything else as given."""
    day = parse_date(value)
    if day is not None:
        return day.strftime("%d/%m/%Y")
    raw = text(value)
    if len(raw) == 7 and raw[4] == "-" and raw[:4].isdigit() and raw[5:].isdigit():
        return f"{raw[5:]}/{raw[:4]}"
    return raw


def text(value: object) -> str:
    """Any JSON value as one line of French text (``oui``/``non``, lists joined by ``, ``,
    objects as ``name : value``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Mapping):
        parts = [f"{field_label(k)} : {text(v)}" for k, v in value.items() if text(v)]
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        return ", ".join(t for t in (text(v) for v in value) if t)
    return " ".join(str(value).split())


def author(entry: Mapping[str, Any]) -> str:
    """Who added the entry when it was not the patient (a professional's or an application's
    name); empty when the patient added it."""
    if text(entry.get("added_by_kind")) == "patient":
        return ""
    return text(entry.get("added_by"))


def first(entry: Mapping[str, Any], *keys: str) -> str:
    """The first of ``keys`` the entry holds with a non-empty value, as text."""
    for key in keys:
        shown = text(entry.get(key))
        if shown:
            return shown
    return ""


def code_text(entry: Mapping[str, Any]) -> str:
    """The entry's code, ``CIM-10 J45`` style; empty when it has none."""
    code = entry.get("code")
    system = text(entry.get("code_system") or entry.get("system"))
    if isinstance(code, Mapping):
        system = system or text(code.get("system"))
        code = code.get("code")
    shown = text(code)
    if not shown:
        return ""
    plain = _plain(system)
    if "icd" in plain or "cim" in plain:
        system = "CIM-10"
    elif system.startswith(("http://", "https://", "urn:")):
        system = "code"
    return f"{system or 'code'} {shown}"


def field_label(key: str) -> str:
    """The French label of a field name; an unknown one with its underscores as spaces."""
    known = _FIELD_LABELS.get(key)
    if known:
        return known
    raw = key.replace("_", " ").strip()
    return raw[:1].upper() + raw[1:]


def extras(entry: Mapping[str, Any], shown: frozenset[str] | set[str]) -> str:
    """The fields an entry holds beyond ``shown`` and the bookkeeping: ``Label : value; ...``.

    So that nothing a professional or a newer version of the profile wrote is silently lost."""
    parts = []
    for key, value in entry.items():
        if key in shown or key in META_FIELDS:
            continue
        is_date = key in _DATE_FIELDS or key.endswith(("_date", "_at", "_on"))
        shown_value = short_date(value) if is_date else text(value)
        if shown_value:
            parts.append(f"{field_label(key)} : {shown_value}")
    return " ; ".join(parts)


_DATE_FIELDS = frozenset({"date", "since", "start", "end", "until", "onset"})

_LATIN1_SUBSTITUTES = {"’": "'", "‘": "'", "“": '"', "”": '"', "œ": "oe", "Œ": "OE",
                       "—": "-", "–": "-", "…": "...", "≥": ">=", "≤": "<="}


def latin1(value: str) -> str:
    """``value`` in the PDF core fonts' Latin-1, unaccenting what lies outside it."""
    out = []
    for ch in value:
        ch = _LATIN1_SUBSTITUTES.get(ch, ch)
        if all(ord(c) < 256 for c in ch):
            out.append(ch)
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(plain or "?")
    return "".join(out)
