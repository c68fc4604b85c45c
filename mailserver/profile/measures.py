"""The measures of the "Mesures" rubric: kinds, units, plausible ranges, conversion and the
computed BMI (pure).

Every kind is one row of :data:`MEASURES`. A measure is stored in its kind's one unit
(``unit``); the glycaemia may be entered in mmol/L and is converted to g/L (1 g/L = 5.55 mmol/L,
the glucose conversion used by French laboratories), rounded to 2 decimals. Ranges are what a
person can plausibly measure (a baby's weight to an adult's, a fever to hypothermia), wide
enough never to refuse a true value and narrow enough to catch a slip (a height in metres, a
temperature in Fahrenheit): they are our choice. LOINC codes are the vital-signs codes of
../shared/domain/README.md §12.

The BMI (``imc``) is never entered: :func:`latest_imc` computes it from the latest weight and
the latest height.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mailserver.profile.fields import fr_number

__all__ = ["MeasureKind", "MEASURES", "MEASURE_KINDS", "GLUCOSE_MMOL_PER_G",
           "normalise_measure", "imc", "latest_imc", "describe_measure"]

GLUCOSE_MMOL_PER_G = 5.55
"""1 g/L of glucose = 5.55 mmol/L."""


@dataclass(frozen=True, slots=True)
class MeasureKind:
    """One kind of measure. ``pair`` kinds (blood pressure) have ``systolic``/``diastolic``
    instead of ``value``; ``units`` maps every accepted unit to the factor dividing an entered
    value into ``unit``; ``entered`` is False for computed kinds."""

    slug: str
    label: str
    unit: str
    low: float
    high: float
    loinc: str
    integer: bool = False
    pair: bool = False
    entered: bool = True
    units: tuple[tuple[str, float], ...] = ()
    for_children: bool = False

    def accepted_units(self) -> tuple[str, ...]:
        return (self.unit,) + tuple(u for u, _ in self.units if u != self.unit)


MEASURES: tuple[MeasureKind, ...] = (
    MeasureKind("poids", "Poids", "kg", 0.3, 500, "29463-7"),
    MeasureKind("taille", "Taille", "cm", 20, 260, "8302-2"),
    MeasureKind("imc", "Indice de masse corporelle (IMC)", "kg/m²", 5, 150, "39156-5",
                entered=False),
    MeasureKind("tension", "Tension artérielle", "mmHg", 20, 300, "85354-9", integer=True,
                pair=True),
    MeasureKind("frequence-cardiaque", "Fréquence cardiaque", "bpm", 20, 300, "8867-4",
                integer=True),
    MeasureKind("glycemie", "Glycémie", "g/L", 0.1, 10, "2339-0",
                units=(("mmol/L", GLUCOSE_MMOL_PER_G),)),
    MeasureKind("temperature", "Température", "°C", 30, 45, "8310-5"),
    MeasureKind("douleur", "Niveau de douleur", "/10", 0, 10, "72514-3", integer=True),
    MeasureKind("saturation", "Saturation en oxygène", "%", 50, 100, "59408-5"),
    MeasureKind("perimetre-cranien", "Périmètre crânien", "cm", 20, 70, "9843-4",
                for_children=True),
)
MEASURE_KINDS: dict[str, MeasureKind] = {m.slug: m for m in MEASURES}

SYSTOLIC = (50.0, 300.0)
DIASTOLIC = (20.0, 200.0)
"""Plausible blood-pressure ranges (mmHg); the systolic is also above the diastolic."""


def _between(x: float, low: float, high: float, unit: str) -> str:
    if low <= x <= high:
        return ""
    return f"La valeur doit être comprise entre {fr_number(low)} et {fr_number(high)} {unit}."


def normalise_measure(values: dict[str, Any]) -> dict[str, str]:
    """Check a parsed measure against its kind and convert it to the kind's unit, in place.

    ``values`` holds the parsed fields (``kind``, ``value`` or ``systolic``/``diastolic``,
    ``unit``, ...). Returns French errors by field (empty when valid).
    """
    kind = MEASURE_KINDS[values["kind"]]
    unit = values.get("unit") or kind.unit
    if unit not in kind.accepted_units():
        return {"unit": f"Unité possible : {' ou '.join(kind.accepted_units())}."}
    values["unit"] = kind.unit
    if kind.pair:
        errors = {}
        for name, (low, high) in (("systolic", SYSTOLIC), ("diastolic", DIASTOLIC)):
            x = values.get(name)
            if x is not None and (error := _between(x, low, high, kind.unit)):
                errors[name] = error
        sys_, dia = values.get("systolic"), values.get("diastolic")
        if not errors and sys_ is not None and dia is not None and sys_ <= dia:
            errors["systolic"] = "La pression systolique (le premier chiffre) doit être " \
                                 "supérieure à la diastolique."
        return errors
    x = values.get("value")
    if x is None:
        return {}
    factor = dict(kind.units).get(unit, 1.0)
    if factor != 1.0:
        low, high = kind.low * factor, kind.high * factor
        if error := _between(x, round(low, 2), round(high, 1), unit):
            return {"value": error}
        values["value"] = round(x / factor, 2)
        return {}
    if error := _between(x, kind.low, kind.high, kind.unit):
        return {"value": error}
    return {}


def imc(weight_kg: float, height_cm: float) -> float:
    """Body-mass index, kg/m², one decimal."""
    metres = height_cm / 100
    return round(weight_kg / (metres * metres), 1)


def _latest(entries: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    found = [e for e in entries if e.get("kind") == kind and e.get("value") is not None]
    return max(found, key=lambda e: (str(e.get("date", "")), e.get("id") or 0), default=None)


def latest_imc(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The BMI of the latest weight and the latest height among measure ``entries`` (dicts
    with ``kind``, ``value``, ``date``, optionally ``id``), or None when either is missing.

    Returns ``{"kind": "imc", "value", "unit": "kg/m²", "date"}`` (the later of the two
    dates)."""
    listed = list(entries)
    weight, height = _latest(listed, "poids"), _latest(listed, "taille")
    if weight is None or height is None:
        return None
    return {"kind": "imc", "value": imc(float(weight["value"]), float(height["value"])),
            "unit": "kg/m²", "date": max(str(weight.get("date", "")),
                                         str(height.get("date", "")))}


def describe_measure(values: Mapping[str, Any]) -> str:
    """"Poids : 72,5 kg", "Tension artérielle : 128/82 mmHg"."""
    kind = MEASURE_KINDS.get(str(values.get("kind")))
    if kind is None:
        return ""
    unit = str(values.get("unit") or kind.unit)
    if kind.pair:
        return f"{kind.label} : {values.get('systolic')}/{values.get('diastolic')} {unit}"
    value = values.get("value")
    shown = fr_number(value) if isinstance(value, (int, float)) else str(value)
    return f"{kind.label} : {shown}{'' if unit.startswith('/') else ' '}{unit}"
