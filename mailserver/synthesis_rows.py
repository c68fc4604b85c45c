"""What the profile's synthesis says, row by row (pure): the rubrics' table columns, the French
wording of each cell (status, period, posology, ages, notes, who added it), the latest value of
each measure with the computed BMI, and the lines of the entourage and wishes. The PDF layout
that draws them is :mod:`mailserver.synthesis`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailserver.profile_text import (
    MEASURE_KINDS,
    author,
    code_text,
    extras,
    first,
    measure_date,
    measure_kind,
    measure_label,
    measure_value,
    number,
    parse_date,
    short_date,
    text,
)

Render = Callable[[Mapping[str, Any]], str]
_NOTE_KEYS = ("notes", "note", "description", "comment")
_CODE_KEYS = ("code", "code_system", "system")


@dataclass(frozen=True)
class Column:
    """One column of a rubric's table: heading, relative width, fields shown, how."""

    heading: str
    width: float
    keys: tuple[str, ...]
    render: Render


@dataclass(frozen=True)
class Rubric:
    """How one rubric is laid out as a table (notes, other fields and the source come last)."""

    slug: str
    title: str
    columns: tuple[Column, ...]
    empty: str
    newest_first: tuple[str, ...] = ()
    """Date fields to sort by, newest first; empty keeps the profile's order."""


def _col(heading: str, width: float, *keys: str) -> Column:
    return Column(heading, width, keys, lambda e: first(e, *keys))


def _date_col(heading: str, width: float, *keys: str) -> Column:
    return Column(heading, width, keys, lambda e: short_date(first(e, *keys)))


def _named(heading: str, width: float, *keys: str) -> Column:
    """A label with its code when it has one: ``Asthme (CIM-10 J45)``."""
    def render(entry: Mapping[str, Any]) -> str:
        label, code = first(entry, *keys), code_text(entry)
        return f"{label} ({code})" if label and code else label or code
    return Column(heading, width, keys + _CODE_KEYS, render)


_STATUS = {"active": "en cours", "actif": "en cours", "en_cours": "en cours",
           "resolved": "résolu", "resolu": "résolu", "inactive": "inactif",
           "remission": "en rémission"}


def _status(entry: Mapping[str, Any]) -> str:
    raw = first(entry, "status")
    return _STATUS.get(raw.lower().replace(" ", "_").replace("é", "e"), raw)


def _period(entry: Mapping[str, Any]) -> str:
    start = short_date(first(entry, "start", "start_date", "since"))
    end = short_date(first(entry, "end", "end_date"))
    if start and end:
        return f"du {start} au {end}"
    if start:
        return f"depuis le {start}"
    return f"jusqu'au {end}" if end else ""


def _posology(entry: Mapping[str, Any]) -> str:
    return ", ".join(p for p in (first(entry, "dose", "dosage"), first(entry, "frequency")) if p)


def _dose_number(entry: Mapping[str, Any]) -> str:
    raw = entry.get("dose_number")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return "1re" if raw == 1 else f"{raw}e"
    return text(raw)


def _age(entry: Mapping[str, Any]) -> str:
    raw = entry.get("age_at_onset", entry.get("onset_age"))
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return f"{number(raw)} ans"
    return text(raw)


RUBRIC_TABLES: tuple[Rubric, ...] = (
    Rubric("maladies", "Maladies et sujets de santé", (
        _named("Maladie ou sujet de santé", 34, "condition", "label", "name"),
        _date_col("Depuis", 14, "since", "onset", "start", "start_date"),
        Column("Statut", 13, ("status",), _status),
    ), "Aucune maladie ni aucun sujet de santé renseigné."),
    Rubric("traitements", "Traitements", (
        _named("Médicament", 26, "medicine", "medication", "name", "label"),
        Column("Posologie", 18, ("dose", "dosage", "frequency"), _posology),
        Column("Période", 17, ("start", "start_date", "since", "end", "end_date"), _period),
        _col("Prescripteur", 18, "prescriber"),
    ), "Aucun traitement renseigné."),
    Rubric("allergies", "Allergies", (
        _named("Substance", 26, "substance", "allergen", "label", "name"),
        _col("Réaction", 22, "reaction"),
        _col("Sévérité", 13, "severity"),
    ), "Aucune allergie connue renseignée."),
    Rubric("vaccinations", "Vaccinations", (
        _named("Vaccin", 28, "vaccine", "name", "label"),
        _date_col("Date", 13, "date"),
        Column("Dose", 7, ("dose_number",), _dose_number),
        _col("Lot", 16, "lot", "lot_number"),
    ), "Aucune vaccination renseignée.", newest_first=("date",)),
    Rubric("hospitalisations", "Hospitalisations et chirurgies", (
        _date_col("Date", 13, "date", "start", "start_date"),
        _col("Établissement", 22, "establishment", "facility", "hospital"),
        _col("Motif", 17, "reason"),
        _col("Intervention", 22, "procedure", "surgery"),
    ), "Aucune hospitalisation ni chirurgie renseignée.", newest_first=("date", "start")),
    Rubric("historique-soins", "Historique de soins", (
        _date_col("Date", 13, "date"),
        _col("Soin", 22, "kind", "type", "label"),
        _col("Professionnel", 22, "professional", "practitioner"),
    ), "Aucun soin renseigné.", newest_first=("date",)),
    Rubric("antecedents-familiaux", "Antécédents familiaux", (
        _col("Parent", 16, "relative", "relationship"),
        _named("Maladie", 30, "condition", "label", "name"),
        Column("Âge au début", 12, ("age_at_onset", "onset_age"), _age),
    ), "Aucun antécédent familial renseigné."),
)
NOTES_WIDTH, SOURCE_WIDTH = 26, 17


def notes_text(entry: Mapping[str, Any], shown: set[str]) -> str:
    parts = [first(entry, *_NOTE_KEYS), extras(entry, shown | set(_NOTE_KEYS))]
    return " ; ".join(p for p in parts if p)


def source_text(entry: Mapping[str, Any]) -> str:
    who = author(entry) or "vous"
    when = short_date(entry.get("added_at"))
    return f"{who}\nle {when}" if when else who


def entries_of(rubrics: Mapping[str, Any], slug: str) -> list[Mapping[str, Any]]:
    raw = rubrics.get(slug)
    if not isinstance(raw, list | tuple):
        return []
    return [e for e in raw if isinstance(e, Mapping)]


def sorted_entries(entries: list[Mapping[str, Any]], keys: tuple[str, ...]
                   ) -> list[Mapping[str, Any]]:
    if not keys:
        return entries
    def day(entry: Mapping[str, Any]) -> date:
        return next((d for k in keys if (d := parse_date(entry.get(k)))), date.min)
    return sorted(entries, key=day, reverse=True)


# --- Measures -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatestMeasure:
    """The last value of one kind of measure, and how many values the profile holds."""

    label: str
    value: str
    day: date | None
    count: int
    first_day: date | None
    source: str


def latest_measures(entries: Iterable[Mapping[str, Any]]) -> list[LatestMeasure]:
    """One row per kind (known kinds in :data:`MEASURE_KINDS` order, then others by name):
    its most recent value; the IMC computed from the last weight and height when none is
    entered. One pass over the entries, whatever their number."""
    last: dict[str, tuple[date, int, Mapping[str, Any]]] = {}
    counts: dict[str, int] = {}
    firsts: dict[str, date] = {}
    for index, entry in enumerate(entries):
        kind = measure_kind(entry.get("kind"))
        day = measure_date(entry) or date.min
        counts[kind] = counts.get(kind, 0) + 1
        if day != date.min and (kind not in firsts or day < firsts[kind]):
            firsts[kind] = day
        if kind not in last or (day, index) >= last[kind][:2]:
            last[kind] = (day, index, entry)
    order = [k for k in MEASURE_KINDS if k in last] + sorted(k for k in last
                                                               if k not in MEASURE_KINDS)
    rows = []
    for kind in order:
        day, _, entry = last[kind]
        rows.append(LatestMeasure(measure_label(entry.get("kind")), measure_value(entry),
                                  None if day == date.min else day, counts[kind],
                                  firsts.get(kind), source_text(entry)))
    bmi = _computed_bmi(last)
    if bmi is not None:
        rows.insert(2, bmi)  # after the weight and the height, where an entered IMC goes
    return rows


def _computed_bmi(last: Mapping[str, tuple[date, int, Mapping[str, Any]]]
                  ) -> LatestMeasure | None:
    if "imc" in last or "poids" not in last or "taille" not in last:
        return None
    weight, height = last["poids"][2].get("value"), last["taille"][2].get("value")
    if not isinstance(weight, int | float) or not isinstance(height, int | float) or height <= 0:
        return None
    metres = height / 100 if height > 3 else height
    bmi = round(weight / (metres * metres), 1)
    day = max(last["poids"][0], last["taille"][0])
    return LatestMeasure(MEASURE_KINDS["imc"].label, f"{number(bmi)} kg/m²",
                         None if day == date.min else day, 1, None,
                         "calculé à partir du dernier poids et de la dernière taille")


# --- Entourage et volontés ------------------------------------------------------------------

WISHES = (
    ("personne_de_confiance", "Personne de confiance", ("confiance", "trusted")),
    ("directives_anticipees", "Directives anticipées", ("directive", "advance")),
    ("don_organes", "Don d'organes", ("organ",)),
    ("volontes", "Volontés et droits", ("volont", "droit", "wish", "right")),
    ("proches", "Proches", ("proche", "entourage", "relative", "contact", "famil")),
)
_PERSON_KEYS = ("name", "full_name", "first_name", "given_name", "last_name", "family_name")


def wish_group(entry: Mapping[str, Any]) -> str:
    kind = first(entry, "kind", "type", "category").lower()
    for group, _, markers in WISHES:
        if any(m in kind for m in markers):
            return group
    if entry.get("trusted_person") is True or entry.get("is_trusted_person") is True:
        return "personne_de_confiance"
    return "autres"


def wish_line(entry: Mapping[str, Any]) -> str:
    name = first(entry, "name", "full_name") or " ".join(
        p for p in (first(entry, "first_name", "given_name"),
                    first(entry, "last_name", "family_name")) if p)
    parts = [name] if name else []
    relation = first(entry, "relationship", "relation")
    if relation:
        parts.append(f"({relation})")
    head = " ".join(parts)
    shown = {"kind", "type", "category", "relationship", "relation", "trusted_person",
             "is_trusted_person", *_PERSON_KEYS}
    when = short_date(first(entry, "date"))
    segments = [head, first(entry, "position", "decision"), f"le {when}" if when else "",
                first(entry, "text", "content", "wishes"),
                "document déposé dans Mes documents" if entry.get("document_id") else ""]
    shown |= {"position", "decision", "date", "text", "content", "wishes", "document_id"}
    segments.append(notes_text(entry, shown))
    line = " — ".join(p for p in segments if p)
    source = text(entry.get("added_by"))
    return f"{line} (ajouté par {source})" if source else line
