"""FHIR resources read back into medical-profile entries (pure: no I/O; the day is passed in).

The reverse of :mod:`dossier_bridge.fhir.profile_resources` for the types a professional may
create (``CREATABLE``): the resource is checked by ``fhir.resources``, its elements are read
into the rubric's raw fields (the table in ``profile_resources``), then
:func:`mailserver.profile.validate` makes the stored fields. Errors are French: a resource that
is not valid FHIR, or that says nothing we can store, raises :class:`ResourceInvalid`; an entry
refused by the profile's rules raises ``EntryInvalid`` (one message per field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as ModelError

from dossier_bridge.fhir.profile_resources import (
    ATC,
    CARE_KIND_SYSTEM,
    CIP,
    CIS,
    CREATABLE,
    ENTOURAGE_SYSTEM,
    GLUCOSE_MOLAR,
    ICD10,
    LOINC,
    PRESCRIBER_URL,
    RELATIVE_CODES,
    RUBRIC_SYSTEM,
    SEVERITY,
    UCUM_OF,
    V3_ROLE,
)
from mailserver.errors import ValidationError
from mailserver.profile import MEASURES, rubric, validate

__all__ = ["ResourceInvalid", "entry_from_resource", "raw_fields", "patient_of"]

Json = Mapping[str, Any]
CIM10_SYSTEMS = (ICD10, "http://hl7.org/fhir/sid/icd-10-fr", "urn:oid:2.16.840.1.113883.6.3")
_RESOLVED = {"inactive", "remission", "resolved"}
_SEVERITY_FR = {v: k for k, v in SEVERITY.items()}
_RELATIVES = {v: k for k, v in RELATIVE_CODES.items()}
_UNITS = {v: k for k, v in UCUM_OF.items()}
_MEASURE_OF_LOINC = {m.loinc: m.slug for m in MEASURES if m.entered} | {GLUCOSE_MOLAR: "glycemie"}


class ResourceInvalid(ValidationError):
    """A resource that cannot become a profile entry; ``text`` is French, for the client."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# -- reading elements ----------------------------------------------------------------------------

def _list(data: Json, name: str) -> list[Any]:
    value = data.get(name)
    return value if isinstance(value, list) else []


def _first(data: Json, name: str) -> Json:
    items = _list(data, name)
    return items[0] if items and isinstance(items[0], Mapping) else {}


def _dict(data: Json, name: str) -> Json:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(cc: Json) -> str | None:
    """A CodeableConcept's text, else its first coding's display, else its code."""
    if cc.get("text"):
        return str(cc["text"])
    for coding in _list(cc, "coding"):
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding["code"])
    return None


def _code(cc: Json, *systems: str) -> str | None:
    return next((str(c["code"]) for c in _list(cc, "coding")
                 if c.get("system") in systems and c.get("code")), None)


def _day(value: object) -> str | None:
    return str(value)[:10] if value else None


def _notes(data: Json) -> str | None:
    texts = [str(n["text"]) for n in _list(data, "note") if n.get("text")]
    return "\n".join(texts) or None


def _drop_none(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if v is not None}


def patient_of(data: Json) -> tuple[str, str] | None:
    """(system, value) of the patient's identifier (``subject`` or ``patient``), or None."""
    ref = _dict(data, "subject") or _dict(data, "patient")
    ident = _dict(ref, "identifier")
    if ident.get("system") and ident.get("value"):
        return str(ident["system"]), str(ident["value"]).strip().upper()
    return None


# -- one reader per type -------------------------------------------------------------------------

def _condition(data: Json) -> tuple[str, dict[str, Any]]:
    code = _dict(data, "code")
    status = _code(_dict(data, "clinicalStatus"),
                   "http://terminology.hl7.org/CodeSystem/condition-clinical")
    return "maladies", {
        "condition": _text(code), "cim10": _code(code, *CIM10_SYSTEMS),
        "status": "resolved" if status in _RESOLVED else "active",
        "since": _day(data.get("onsetDateTime") or _dict(data, "onsetPeriod").get("start")),
        "notes": _notes(data)}


def _allergy(data: Json) -> tuple[str, dict[str, Any]]:
    reaction = _first(data, "reaction")
    manifestation = _first(reaction, "manifestation")
    return "allergies", {
        "substance": _text(_dict(data, "code")), "reaction": _text(manifestation),
        "severity": _SEVERITY_FR.get(str(reaction.get("severity"))), "notes": _notes(data)}


def _treatment(data: Json) -> tuple[str, dict[str, Any]]:
    medication = _dict(data, "medicationCodeableConcept")
    period = _dict(data, "effectivePeriod")
    dosage = _first(data, "dosage")
    prescriber = next((e.get("valueString") for e in _list(data, "extension")
                       if e.get("url") == PRESCRIBER_URL), None)
    return "traitements", {
        "medicine": _text(medication) or _dict(data, "medicationReference").get("display"),
        "code": _code(medication, CIS, CIP, ATC),
        "start": _day(period.get("start") or data.get("effectiveDateTime")),
        "end": _day(period.get("end")), "dose": dosage.get("text"),
        "frequency": _text(_dict(_dict(dosage, "timing"), "code")), "prescriber": prescriber}


def _vaccination(data: Json) -> tuple[str, dict[str, Any]]:
    vaccine = _dict(data, "vaccineCode")
    protocol = _first(data, "protocolApplied")
    return "vaccinations", {
        "vaccine": _text(vaccine), "code": _code(vaccine, CIS, CIP, ATC),
        "date": _day(data.get("occurrenceDateTime")), "lot": data.get("lotNumber"),
        "dose_number": protocol.get("doseNumberPositiveInt") or protocol.get(
            "doseNumberString")}


def _procedure(data: Json) -> tuple[str, dict[str, Any]]:
    code = _dict(data, "code")
    day = _day(data.get("performedDateTime") or _dict(data, "performedPeriod").get("start"))
    category = _code(_dict(data, "category"), RUBRIC_SYSTEM)
    kind = _code(code, CARE_KIND_SYSTEM)
    if category == "historique-soins" or (kind and category != "hospitalisations"):
        actor = _dict(_first(data, "performer"), "actor")
        return "historique-soins", {"date": day, "kind": kind, "notes": _notes(data),
                                    "professional": actor.get("display")}
    return "hospitalisations", {
        "date": day, "establishment": _dict(data, "location").get("display"),
        "reason": _text(_first(data, "reasonCode")), "procedure": _text(code),
        "notes": _notes(data)}


def _family(data: Json) -> tuple[str, dict[str, Any]]:
    relationship = _code(_dict(data, "relationship"), V3_ROLE)
    condition = _first(data, "condition")
    age = _dict(condition, "onsetAge").get("value")
    if isinstance(age, float) and age.is_integer():
        age = int(age)
    return "antecedents-familiaux", {
        "relative": _RELATIVES.get(relationship or "", "autre"),
        "condition": _text(_dict(condition, "code")),
        "cim10": _code(_dict(condition, "code"), *CIM10_SYSTEMS), "age_at_onset": age,
        "notes": _notes(data)}


def _unit(quantity: Json) -> str | None:
    for key in ("code", "unit"):
        if quantity.get(key) in _UNITS:
            return _UNITS[str(quantity[key])]
    return quantity.get("unit") or quantity.get("code")


def _measure(data: Json) -> tuple[str, dict[str, Any]]:
    codes = [c for c in _list(_dict(data, "code"), "coding") if c.get("system") == LOINC]
    kind = next((_MEASURE_OF_LOINC[str(c.get("code"))] for c in codes
                 if c.get("code") in _MEASURE_OF_LOINC), None)
    if kind is None:
        names = ", ".join(sorted(_MEASURE_OF_LOINC))
        raise ResourceInvalid("Cette mesure n'est pas prise en charge : le code de "
                              f"l'Observation doit être un de ces codes LOINC : {names}.")
    raw: dict[str, Any] = {"kind": kind, "notes": _notes(data), "date": _day(
        data.get("effectiveDateTime") or data.get("effectiveInstant")
        or _dict(data, "effectivePeriod").get("start"))}
    if kind == "tension":
        parts = {"8480-6": "systolic", "8462-4": "diastolic"}
        for component in _list(data, "component"):
            name = parts.get(_code(_dict(component, "code"), LOINC) or "")
            if name:
                quantity = _dict(component, "valueQuantity")
                raw[name], raw["unit"] = quantity.get("value"), _unit(quantity)
        return "mesures", raw
    quantity = _dict(data, "valueQuantity")
    raw["value"], raw["unit"] = quantity.get("value"), _unit(quantity)
    return "mesures", raw


def _related(data: Json) -> tuple[str, dict[str, Any]]:
    relationships = _list(data, "relationship")
    kind = next((k for r in relationships if (k := _code(r, ENTOURAGE_SYSTEM))), None)
    other = next((_text(r) for r in relationships if not _code(r, ENTOURAGE_SYSTEM)), None)
    name = _first(data, "name")
    full = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""])
    telecom = {t.get("system"): t.get("value") for t in _list(data, "telecom")}
    address = _first(data, "address")
    return "entourage-volontes", {
        "kind": kind if kind in ("personne-confiance", "proche") else "proche",
        "name": str(full).strip() or None, "relationship": other,
        "phone": telecom.get("phone"), "email": telecom.get("email"),
        "address": address.get("text") or ", ".join(address.get("line") or []) or None}


_FROM: dict[str, Callable[[Json], tuple[str, dict[str, Any]]]] = {
    "Condition": _condition, "AllergyIntolerance": _allergy, "MedicationStatement": _treatment,
    "Immunization": _vaccination, "Procedure": _procedure, "FamilyMemberHistory": _family,
    "Observation": _measure, "RelatedPerson": _related,
}
assert set(_FROM) == set(CREATABLE)  # noqa: S101 - the two tables stay in step


def _where(exc: ModelError) -> str:
    errors = exc.errors()
    where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
    return "La ressource FHIR n'est pas valide" + (f" (élément « {where} »)." if where else ".")


def raw_fields(data: Json) -> tuple[str, dict[str, Any]]:
    """(rubric slug, raw fields) of a resource, before the profile's validation.

    Raises:
        ResourceInvalid: not a creatable type, not valid FHIR, or an unknown measure.
    """
    rtype = data.get("resourceType")
    if rtype not in _FROM:
        raise ResourceInvalid("Ce type de ressource ne peut pas être ajouté au profil médical "
                              f"(types possibles : {', '.join(CREATABLE)}).")
    try:
        get_fhir_model_class(str(rtype)).model_validate(data)
    except ModelError as exc:
        raise ResourceInvalid(_where(exc)) from exc
    slug, raw = _FROM[str(rtype)](data)
    return slug, _drop_none(raw)


def entry_from_resource(data: Json, today: date) -> tuple[str, dict[str, Any]]:
    """(rubric slug, stored fields) of a resource, validated like any entry.

    Raises:
        ResourceInvalid: see :func:`raw_fields`.
        EntryInvalid: the profile's rules refuse the entry (French messages by field).
    """
    slug, raw = raw_fields(data)
    r = rubric(slug)
    assert r is not None  # noqa: S101 - _FROM names rubrics only
    return slug, validate(r, raw, today)
