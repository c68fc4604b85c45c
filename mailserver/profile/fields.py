"""Fields of the medical profile's entries: kinds, parsing and French messages (pure).

A field reads one raw value, as it comes from JSON (numbers, strings, null) or from an HTML
form (strings, "" for empty), and returns the stored value or a French message written for the
patient ("La date ne peut pas être dans le futur."). Stored values are JSON-able: ``str`` (dates
as ``YYYY-MM-DD``), ``int`` or ``float``. Nothing here raises on bad input: the caller
(:mod:`mailserver.profile.rubrics`) gathers every field's message into one
:class:`EntryInvalid`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailserver.errors import ValidationError

__all__ = ["FieldKind", "Field", "EntryInvalid", "Parsed", "parse_field", "fr_number",
           "fr_date", "display", "TEXT_MAX", "LONG_TEXT_MAX", "EARLIEST"]

TEXT_MAX = 200
LONG_TEXT_MAX = 4000
EARLIEST = date(1900, 1, 1)
"""No date of a profile entry is older (a typing slip, not a fact about the patient)."""

_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_FR_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_INTEGER = re.compile(r"[+-]?\d{1,9}")
_DECIMAL = re.compile(r"[+-]?\d{1,9}(?:[.,]\d{1,6})?")
_PHONE = re.compile(r"\+?[\d .()-]{6,25}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}")


class FieldKind(enum.Enum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    DATE = "date"
    CHOICE = "choice"
    INTEGER = "integer"
    DECIMAL = "decimal"
    CODE = "code"
    PHONE = "phone"
    EMAIL = "email"
    DOCUMENT = "document"
    """The id of a document of the patient's Documents space."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an entry.

    ``low``/``high`` bound numbers; ``future`` lets a date be after today (a planned end of
    treatment); ``pattern`` and ``pattern_text`` check and explain a code's format (the code is
    upper-cased first); ``unit`` is shown after numbers; ``hint`` helps in forms.
    """

    name: str
    label: str
    kind: FieldKind = FieldKind.TEXT
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    """(stored value, French label), in the order shown."""
    low: float | None = None
    high: float | None = None
    future: bool = False
    pattern: str = ""
    pattern_text: str = ""
    unit: str = ""
    hint: str = ""

    def choice_label(self, value: object) -> str:
        return next((label for v, label in self.choices if v == value), str(value))


class EntryInvalid(ValidationError):
    """An entry failed validation. ``errors`` maps a field name to its French message;
    ``labels`` maps field names to their labels (for :meth:`messages`)."""

    def __init__(self, errors: dict[str, str], labels: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)
        self.labels = dict(labels or {})

    def messages(self) -> list[str]:
        """"Label : message" for each field, in field order (for an API or a summary); a field
        without a label (an unknown one) is named as sent."""
        return [f"{self.labels.get(name) or f'« {name} »'} : {_lower_first(text)}"
                for name, text in self.errors.items()]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


@dataclass(frozen=True, slots=True)
class Parsed:
    """What :func:`parse_field` made of one raw value: the value (None when empty) or an
    error."""

    value: Any = None
    error: str = ""


def fr_number(x: float) -> str:
    """``72.5`` → ``"72,5"``; whole numbers without decimals."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".").replace(".", ",")


def fr_date(iso: str) -> str:
    """``"2026-11-20"`` → ``"20/11/2026"`` (other strings unchanged)."""
    m = _ISO_DAY.fullmatch(iso)
    return f"{m.group(3)}/{m.group(2)}/{m.group(1)}" if m else iso


def _empty(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _range_error(f: Field, x: float) -> str:
    unit = f" {f.unit}" if f.unit else ""
    if f.low is not None and f.high is not None and not f.low <= x <= f.high:
        return f"La valeur doit être comprise entre {fr_number(f.low)} et " \
               f"{fr_number(f.high)}{unit}."
    if f.low is not None and x < f.low:
        return f"La valeur doit être au moins {fr_number(f.low)}{unit}."
    if f.high is not None and x > f.high:
        return f"La valeur doit être au plus {fr_number(f.high)}{unit}."
    return ""


def _date(raw: str) -> date | None:
    raw = raw.strip()
    m = _ISO_DAY.fullmatch(raw)
    parts = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    if parts is None and (m := _FR_DAY.fullmatch(raw)):
        parts = (int(m.group(3)), int(m.group(2)), int(m.group(1)))
    if parts is None:
        return None
    try:
        return date(*parts)
    except ValueError:
        return None


def _number(raw: object, integer: bool) -> float | int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if integer:
            return int(raw) if raw.is_integer() else None
        return raw if raw == raw and abs(raw) != float("inf") else None
    if not isinstance(raw, str):
        return None
    text = raw.strip().replace("\u202f", "").replace(" ", "")
    if integer:
        return int(text) if _INTEGER.fullmatch(text) else None
    return float(text.replace(",", ".")) if _DECIMAL.fullmatch(text) else None


def parse_field(f: Field, raw: object, today: date) -> Parsed:
    """Read ``raw`` for ``f``. Empty values give ``Parsed(None)`` (or the "required" error)."""
    if _empty(raw):
        return Parsed(error="Ce champ est obligatoire." if f.required else "")
    if f.kind in (FieldKind.INTEGER, FieldKind.DECIMAL, FieldKind.DOCUMENT):
        return _parse_number(f, raw)
    if not isinstance(raw, str):
        return Parsed(error="Saisissez un texte.")
    text = raw.strip()
    if f.kind is FieldKind.DATE:
        return _parse_date(f, text, today)
    if f.kind is FieldKind.CHOICE:
        if text in {v for v, _ in f.choices}:
            return Parsed(text)
        names = ", ".join(label for _, label in f.choices)
        return Parsed(error=f"Choisissez une valeur de la liste ({names}).")
    limit = LONG_TEXT_MAX if f.kind is FieldKind.LONG_TEXT else TEXT_MAX
    if len(text) > limit:
        return Parsed(error=f"Ce texte est trop long ({limit} caractères au plus).")
    if f.kind is FieldKind.CODE:
        code = text.upper().replace(" ", "")
        if f.pattern and not re.fullmatch(f.pattern, code):
            return Parsed(error=f.pattern_text or "Ce code n'a pas le bon format.")
        return Parsed(code)
    if f.kind is FieldKind.PHONE and (not _PHONE.fullmatch(text)
                                      or not 6 <= sum(c.isdigit() for c in text) <= 15):
        return Parsed(error="Indiquez un numéro de téléphone valide (par exemple "
                            "06 12 34 56 78).")
    if f.kind is FieldKind.EMAIL and not _EMAIL.fullmatch(text):
        return Parsed(error="Indiquez une adresse e-mail valide (par exemple "
                            "nom@exemple.fr).")
    return Parsed(text)


def _parse_number(f: Field, raw: object) -> Parsed:
    integer = f.kind is not FieldKind.DECIMAL
    x = _number(raw, integer)
    if x is None:
        if f.kind is FieldKind.DOCUMENT:
            return Parsed(error="Choisissez un document de votre espace Documents.")
        return Parsed(error="Indiquez un nombre entier." if integer
                      else "Indiquez un nombre (par exemple 72,5).")
    if f.kind is FieldKind.DOCUMENT:
        return Parsed(x) if 1 <= x <= 2**31 - 1 else Parsed(
            error="Choisissez un document de votre espace Documents.")
    error = _range_error(f, x)
    return Parsed(error=error) if error else Parsed(x)


def _parse_date(f: Field, text: str, today: date) -> Parsed:
    day = _date(text)
    if day is None:
        return Parsed(error="Indiquez une date valide (jour/mois/année).")
    if day < EARLIEST:
        return Parsed(error="La date ne peut pas être antérieure à 1900.")
    if not f.future and day > today:
        return Parsed(error="La date ne peut pas être dans le futur.")
    return Parsed(day.isoformat())


def display(f: Field, value: object) -> str:
    """A stored value as the patient reads it (choice labels, dates, decimal commas)."""
    if value is None or value == "":
        return ""
    if f.kind is FieldKind.CHOICE:
        return f.choice_label(value)
    if f.kind is FieldKind.DATE and isinstance(value, str):
        return fr_date(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and f.kind is not FieldKind.DOCUMENT:
        return fr_number(value) + (f" {f.unit}" if f.unit else "")
    return str(value)
