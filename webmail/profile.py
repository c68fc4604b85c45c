"""The patient's medical profile, shared by the HTML views and ``/api/``: the seam, the rubric
of a URL, an entry as JSON, the whole profile as ``GET /api/profile`` returns it, and the form
fields the pages show. The entries come from the ``PatientProfile`` seam (the dossier bridge,
wired by the root); the rubrics and their rules from ``mailserver.profile`` (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from mailserver.directory.service import AccountInfo
from mailserver.profile import (
    MEASURE_KINDS,
    RUBRIC_SLUGS,
    Field,
    FieldKind,
    Rubric,
    fr_number,
    latest_imc,
    rubric,
)
from webmail.deps import PatientProfile, ProfileEntryRow
from webmail.web import DEPS

__all__ = ["SLUG_PATTERN", "profile_of", "rubric_of", "entry_json", "profile_json",
           "FormField", "form_fields", "input_value"]

SLUG_PATTERN = "|".join(re.escape(s) for s in RUBRIC_SLUGS)
"""The route pattern of a rubric's slug (anything else is not a route: 404)."""


def profile_of(request: web.Request) -> PatientProfile:
    """The seam, or 404 when the server runs without the profile."""
    profile = request.app[DEPS].profile
    if profile is None:
        raise web.HTTPNotFound()
    return profile


def rubric_of(request: web.Request) -> Rubric:
    r = rubric(request.match_info.get("slug", ""))
    if r is None:
        raise web.HTTPNotFound()
    return r


def entry_json(row: ProfileEntryRow) -> dict[str, Any]:
    """An entry as ``/api/profile`` shows it: ``id``, who added it and when, then its fields
    (snake_case, as ``mailserver.profile`` defines them)."""
    return {"id": row.id, "added_by": row.added_by, "added_by_kind": row.added_by_kind,
            "added_at": row.added_at.isoformat(), **row.data}


async def profile_json(profile: PatientProfile, account: AccountInfo) -> dict[str, Any]:
    """``{"rubrics": {"<slug>": [entries]}, "computed": {"imc": ...}}``: every rubric (empty
    ones too), each newest first; the BMI computed from the latest weight and height."""
    rubrics: dict[str, list[dict[str, Any]]] = {slug: [] for slug in RUBRIC_SLUGS}
    for row in await profile.entries(account):
        rubrics.setdefault(row.rubric, []).append(entry_json(row))
    return {"rubrics": rubrics, "computed": {"imc": latest_imc(rubrics["mesures"])}}


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of an add or edit form, as the template draws it."""

    name: str
    label: str
    widget: str
    """text | textarea | date | select | number | tel | email."""
    value: str
    required: bool
    hint: str = ""
    error: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    inputmode: str = ""
    max: str = ""
    maxlength: int = 200


def input_value(value: object) -> str:
    """A stored value as a form shows it (decimal commas)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return fr_number(value)
    return str(value)


EXAMPLES = {"poids": "72,5", "taille": "168,5", "glycemie": "1,05 (g/L) ou 5,8 (mmol/L)",
            "temperature": "37,2", "saturation": "97", "perimetre-cranien": "35,5"}
"""An example value in each decimal measure's form hint."""

_WIDGETS = {FieldKind.TEXT: "text", FieldKind.CODE: "text", FieldKind.LONG_TEXT: "textarea",
            FieldKind.DATE: "date", FieldKind.CHOICE: "select", FieldKind.INTEGER: "number",
            FieldKind.DECIMAL: "number", FieldKind.PHONE: "tel", FieldKind.EMAIL: "email",
            FieldKind.DOCUMENT: "select"}


def _field(f: Field, kind: object, value: str, error: str, today: date,
           documents: Sequence[tuple[str, str]]) -> FormField | None:
    hint, choices, widget, required = f.hint, f.choices, _WIDGETS[f.kind], f.required
    units = MEASURE_KINDS[kind].accepted_units() \
        if isinstance(kind, str) and kind in MEASURE_KINDS else ()
    if f.name == "unit":
        if len(units) < 2:
            return None  # one unit: nothing to choose
        choices, hint, widget, required = tuple((u, u) for u in units), "", "select", True
        value = value or units[0]
    if f.kind is FieldKind.DOCUMENT:
        choices = tuple(documents)
        hint = hint or ("Un document de votre espace Documents (ajoutez-le d'abord dans "
                        "« Mes documents »)." if documents else
                        "Vous n'avez pas encore de document : ajoutez-le d'abord dans "
                        "« Mes documents ».")
    if f.kind in (FieldKind.INTEGER, FieldKind.DECIMAL) and not hint:
        if len(units) > 1:
            hint = "dans l'unité choisie ci-dessous"
        elif f.unit:
            hint = f"en {f.unit}"
        if f.kind is FieldKind.DECIMAL:
            hint = f"{hint}, par exemple {EXAMPLES.get(str(kind), '12,5')}".lstrip(", ")
    if f.kind is FieldKind.DATE:
        hint = hint or "jour/mois/année"
    return FormField(
        name=f.name, label=f.label, widget=widget, value=value,
        required=required, hint=hint, error=error, choices=choices,
        inputmode={FieldKind.INTEGER: "numeric", FieldKind.DECIMAL: "decimal"}.get(f.kind, ""),
        max="" if f.future or f.kind is not FieldKind.DATE else today.isoformat(),
        maxlength=4000 if f.kind is FieldKind.LONG_TEXT else 200)


def form_fields(r: Rubric, kind: object, values: Mapping[str, object],
                errors: Mapping[str, str], today: date,
                documents: Sequence[tuple[str, str]] = ()) -> list[FormField]:
    """The form of an entry of ``r`` (of ``kind``), filled with ``values`` and ``errors``."""
    out = []
    for f in r.fields_for(kind):
        ff = _field(f, kind, input_value(values.get(f.name)), errors.get(f.name, ""), today,
                    documents)
        if ff is not None:
            out.append(ff)
    return out
