"""Medical-profile entries as FHIR R4 resources (pure: no I/O, no clock).

An entry is what ``ProfileEntryInfo.as_json()`` gives (``id``, ``added_by``, ``added_by_kind``,
``added_at`` and the rubric's fields) with its rubric's slug. :func:`to_resource` makes the
resource; :mod:`dossier_bridge.fhir.profile_entries` reads one back into entry fields;
:func:`profile_bundle` puts a whole profile in a collection Bundle (the account export).
Models: ``fhir.resources.R4B`` (FHIR 4.3, wire-compatible with R4 for these resources).

One table, rubric → resource (domain README section 12):

==========================  =========================================================
maladies                    Condition (code: text, CIM-10 ``http://hl7.org/fhir/sid/icd-10``
                            when given; clinicalStatus active/resolved; onsetDateTime)
allergies                   AllergyIntolerance (code: the substance; reaction manifestation
                            and severity mild/moderate/severe)
traitements                 MedicationStatement (medication code CIS/CIP/ATC when given,
                            dosage text and timing, effectivePeriod, the prescriber as an
                            extension)
vaccinations                Immunization (vaccineCode, occurrenceDateTime, lotNumber,
                            protocolApplied.doseNumberPositiveInt)
hospitalisations            Procedure (category ``hospitalisations``; performedDateTime,
                            location display, reasonCode text, code text)
historique-soins            Procedure too, told apart by its category ``historique-soins``
                            (our choice: a care event is something done to the patient, and
                            an Encounter would need a class and a service provider we do not
                            have); code = the kind of care, performer = the professional
antecedents-familiaux       FamilyMemberHistory (relationship v3-RoleCode, condition, onsetAge)
mesures                     Observation, vital-signs profile, LOINC codes of
                            ``mailserver.profile.measures``, UCUM units; blood pressure as the
                            panel 85354-9 with components 8480-6 and 8462-4
entourage-volontes          RelatedPerson (personne de confiance, proche); the patient's
                            wishes (volontés, don d'organes, directives anticipées) as Consent
                            (scope ``adr``), read only
==========================  =========================================================

Every resource names the patient by INS identifier (``subject`` or ``patient``) and who added
the entry: ``meta.source`` ``urn:mssante:profile:<kind>`` and a ``meta.tag`` (kind, name), and
where the resource has one, ``recorder`` + ``asserter`` (Condition, AllergyIntolerance,
Procedure), ``informationSource`` (MedicationStatement) or ``performer`` (Observation; an
application's measure names it as ``device``). Logical ids are ``<patient key>-<entry id>``
(the key is the patient's account id, checked on read).
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from mailserver.profile import MEASURE_KINDS, RESERVED, rubric

__all__ = [
    "ICD10", "UCUM", "LOINC", "ATC", "CIS", "CIP", "RUBRIC_SYSTEM", "CARE_KIND_SYSTEM",
    "ENTOURAGE_SYSTEM", "ADDED_BY_SYSTEM", "PRESCRIBER_URL", "VITAL_SIGNS", "INS_NIR", "V3_ROLE",
    "GLUCOSE_MOLAR",
    "RESOURCE_RUBRICS", "CREATABLE", "UCUM_OF", "SEVERITY", "RELATIVE_CODES", "WISHES",
    "PatientIdentity", "BundleDocument", "resource_type_of", "to_resource", "profile_bundle",
    "fields_of", "medicine_system", "resource_id",
]

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
CIS = "urn:oid:1.2.250.1.213.2.3.1"
CIP = "urn:oid:1.2.250.1.213.2.3.2"
V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
RUBRIC_SYSTEM = "urn:mssante:profile:rubric"
CARE_KIND_SYSTEM = "urn:mssante:profile:care-kind"
ENTOURAGE_SYSTEM = "urn:mssante:profile:entourage"
ADDED_BY_SYSTEM = "urn:mssante:profile:added-by"
PRESCRIBER_URL = "urn:mssante:profile:prescriber"
"""Our choices: systems for what no public code system names (the rubric, the kind of care,
the entourage's kinds, who added an entry) and the extension carrying a treatment's
prescriber (MedicationStatement has no element for it)."""

RESOURCE_RUBRICS: dict[str, tuple[str, ...]] = {
    "Condition": ("maladies",), "AllergyIntolerance": ("allergies",),
    "MedicationStatement": ("traitements",), "Immunization": ("vaccinations",),
    "Procedure": ("hospitalisations", "historique-soins"),
    "FamilyMemberHistory": ("antecedents-familiaux",), "Observation": ("mesures",),
    "RelatedPerson": ("entourage-volontes",), "Consent": ("entourage-volontes",),
}
"""Resource type → the rubrics whose entries it shows."""
CREATABLE = tuple(t for t in RESOURCE_RUBRICS if t != "Consent")
"""Types a professional may create (the patient's wishes are the patient's to write)."""
WISHES = ("volontes", "don-organes", "directives-anticipees")
"""Kinds of "Entourage et volontés" shown as Consent (the others are RelatedPerson)."""

UCUM_OF: dict[str, str] = {"kg": "kg", "cm": "cm", "kg/m²": "kg/m2", "mmHg": "mm[Hg]",
                           "bpm": "/min", "g/L": "g/L", "mmol/L": "mmol/L", "°C": "Cel",
                           "/10": "{score}", "%": "%"}
"""A measure's unit (``mailserver.profile.measures``) → its UCUM code."""
GLUCOSE_MOLAR = "15074-8"
"""Glucose in moles (mmol/L); the stored unit is g/L (2339-0)."""
SEVERITY = {"légère": "mild", "modérée": "moderate", "sévère": "severe"}
RELATIVE_CODES = {
    "mere": "MTH", "pere": "FTH", "soeur": "SIS", "frere": "BRO", "fille": "DAU", "fils": "SON",
    "grand-mere-maternelle": "MGRMTH", "grand-pere-maternel": "MGRFTH",
    "grand-mere-paternelle": "PGRMTH", "grand-pere-paternel": "PGRFTH", "tante": "AUNT",
    "oncle": "UNCLE", "autre": "FAMMEMB"}
"""A relative (antecedents-familiaux) → v3-RoleCode."""
_SUBJECT = {"Condition": "subject", "MedicationStatement": "subject", "Procedure": "subject",
            "Observation": "subject"}
"""The element naming the patient (``patient`` for the other types)."""


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """The patient as the resources name them (INS) and the bundle's Patient shows them."""

    ins: str
    system: str = INS_NIR
    key: str = ""
    """Prefix of logical ids (the patient's account id), empty for none."""
    family: str = ""
    given: str = ""
    birth_date: str = ""
    """``YYYY-MM-DD``."""
    gender: str = ""
    """``male``, ``female``, ``other`` or ``unknown``."""

    def reference(self) -> dict[str, Any]:
        return {"type": "Patient", "identifier": {"system": self.system, "value": self.ins}}


@dataclass(frozen=True, slots=True)
class BundleDocument:
    """A document of the patient's space, for :func:`profile_bundle`."""

    id: str
    title: str
    content_type: str
    url: str
    """Where its bytes are: a path inside the export, or a ``Binary`` URL."""
    date: datetime
    size: int | None = None
    label: str = ""
    """The patient-facing label's French name ("Comptes rendus")."""


def _cc(system: str, code: str, display: str = "", text: str = "") -> dict[str, Any]:
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"coding": [coding], **({"text": text} if text else {})}


def medicine_system(code: str) -> str:
    """The system of a medicine or vaccine code: CIS (8 digits), CIP (7 or 13), else ATC."""
    if code.isdigit():
        return CIS if len(code) == 8 else CIP
    return ATC


def _coded_text(text: str, code: object, system: str) -> dict[str, Any]:
    if not code:
        return {"text": text}
    return {"coding": [{"system": system, "code": str(code)}], "text": text}


def _note(f: Mapping[str, Any], name: str = "notes") -> dict[str, Any]:
    return {"note": [{"text": f[name]}]} if f.get(name) else {}


def _condition(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    return {"resourceType": "Condition",
            "clinicalStatus": _cc(CONDITION_CLINICAL, str(f.get("status", "active"))),
            "category": [_cc(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
            "code": _coded_text(f["condition"], f.get("cim10"), ICD10),
            **({"onsetDateTime": f["since"]} if f.get("since") else {}), **_note(f)}


def _allergy(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    data: dict[str, Any] = {"resourceType": "AllergyIntolerance",
                            "clinicalStatus": _cc(ALLERGY_CLINICAL, "active"),
                            "code": {"text": f["substance"]}, **_note(f)}
    if f.get("reaction") or f.get("severity"):
        manifestation = {"text": f["reaction"]} if f.get("reaction") else {
            "extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}
        reaction: dict[str, Any] = {"manifestation": [manifestation]}
        if f.get("severity") in SEVERITY:
            reaction["severity"] = SEVERITY[f["severity"]]
        data["reaction"] = [reaction]
    return data


def _treatment(f: Mapping[str, Any], today: str) -> dict[str, Any]:
    end = str(f.get("end") or "")
    data: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "completed" if end and today and end < today else "active",
        "medicationCodeableConcept": _coded_text(
            f["medicine"], f.get("code"), medicine_system(str(f.get("code") or "")))}
    period = {k: f[n] for k, n in (("start", "start"), ("end", "end")) if f.get(n)}
    if period:
        data["effectivePeriod"] = period
    dosage: dict[str, Any] = {}
    if f.get("dose"):
        dosage["text"] = f["dose"]
    if f.get("frequency"):
        dosage["timing"] = {"code": {"text": f["frequency"]}}
    if dosage:
        data["dosage"] = [dosage]
    if f.get("prescriber"):
        data["extension"] = [{"url": PRESCRIBER_URL, "valueString": f["prescriber"]}]
    return data


def _vaccination(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": _coded_text(f["vaccine"], f.get("code"),
                                   medicine_system(str(f.get("code") or ""))),
        "occurrenceDateTime": f["date"]}
    if f.get("lot"):
        data["lotNumber"] = f["lot"]
    if f.get("dose_number"):
        data["protocolApplied"] = [{"doseNumberPositiveInt": int(f["dose_number"])}]
    return data


def _rubric_category(slug: str) -> dict[str, Any]:
    r = rubric(slug)
    return _cc(RUBRIC_SYSTEM, slug, r.title if r else "")


def _hospitalisation(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    data: dict[str, Any] = {"resourceType": "Procedure", "status": "completed",
                            "category": _rubric_category("hospitalisations"),
                            "performedDateTime": f["date"], **_note(f)}
    if f.get("procedure"):
        data["code"] = {"text": f["procedure"]}
    if f.get("establishment"):
        data["location"] = {"display": f["establishment"]}
    if f.get("reason"):
        data["reasonCode"] = [{"text": f["reason"]}]
    return data


def _care(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    r = rubric("historique-soins")
    kind = r.field("kind") if r else None
    label = kind.choice_label(f["kind"]) if kind else str(f["kind"])
    data: dict[str, Any] = {"resourceType": "Procedure", "status": "completed",
                            "category": _rubric_category("historique-soins"),
                            "code": _cc(CARE_KIND_SYSTEM, str(f["kind"]), label, label),
                            "performedDateTime": f["date"], **_note(f)}
    if f.get("professional"):
        data["performer"] = [{"actor": {"display": f["professional"]}}]
    return data


def _family(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    r = rubric("antecedents-familiaux")
    relative = r.field("relative") if r else None
    label = relative.choice_label(f["relative"]) if relative else ""
    condition: dict[str, Any] = {"code": _coded_text(f["condition"], f.get("cim10"), ICD10)}
    if f.get("age_at_onset") is not None:
        condition["onsetAge"] = {"value": f["age_at_onset"], "unit": "ans", "system": UCUM,
                                 "code": "a"}
    return {"resourceType": "FamilyMemberHistory", "status": "completed",
            "relationship": _cc(V3_ROLE, RELATIVE_CODES.get(str(f["relative"]), "FAMMEMB"),
                                text=label),
            "condition": [condition], **_note(f)}


def _quantity(value: object, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": UCUM_OF.get(unit, unit)}


def _measure(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    kind = MEASURE_KINDS[str(f["kind"])]
    unit = str(f.get("unit") or kind.unit)
    data: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "meta": {"profile": [VITAL_SIGNS]},
        "category": [_cc(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        "code": _cc(LOINC, kind.loinc, text=kind.label),
        "effectiveDateTime": f["date"], **_note(f)}
    if kind.pair:
        data["component"] = [
            {"code": _cc(LOINC, code, text=label), "valueQuantity": _quantity(f[name], unit)}
            for code, name, label in (("8480-6", "systolic", "Pression systolique"),
                                      ("8462-4", "diastolic", "Pression diastolique"))]
    else:
        data["valueQuantity"] = _quantity(f["value"], unit)
    return data


def _entourage(f: Mapping[str, Any], _today: str) -> dict[str, Any]:
    r = rubric("entourage-volontes")
    variant = r.variant(f.get("kind")) if r else None
    label = variant.label if variant else ""
    if f.get("kind") in WISHES:
        return _wish(f, label)
    relationship = [_cc(ENTOURAGE_SYSTEM, str(f.get("kind")), label)]
    if f.get("relationship"):
        relationship.append({"text": f["relationship"]})
    telecom = [{"system": s, "value": f[n]} for s, n in (("phone", "phone"), ("email", "email"))
               if f.get(n)]
    data: dict[str, Any] = {"resourceType": "RelatedPerson", "active": True,
                            "relationship": relationship, "name": [{"text": f["name"]}]}
    if telecom:
        data["telecom"] = telecom
    if f.get("address"):
        data["address"] = [{"text": f["address"]}]
    return data


def _wish(f: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Volontés, don d'organes, directives anticipées as a Consent (read only)."""
    lines = [label] + [str(f[n]) for n in ("text", "notes") if f.get(n)]
    r = rubric("entourage-volontes")
    position = r.field("position", "don-organes") if r else None
    if f.get("position") and position is not None:
        lines.append(position.choice_label(f["position"]))
    div = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    data: dict[str, Any] = {
        "resourceType": "Consent", "status": "active",
        "text": {"status": "generated",
                 "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{div}</div>'},
        "scope": _cc(CONSENT_SCOPE, "adr", "Advanced Care Directive"),
        "category": [_cc(ENTOURAGE_SYSTEM, str(f["kind"]), label)]}
    if f.get("date"):
        data["dateTime"] = f["date"]
    if f.get("position"):
        data["provision"] = {"type": "permit" if f["position"] == "favorable" else "deny"}
    return data


_TO: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    "maladies": _condition, "allergies": _allergy, "traitements": _treatment,
    "vaccinations": _vaccination, "hospitalisations": _hospitalisation,
    "historique-soins": _care, "antecedents-familiaux": _family, "mesures": _measure,
    "entourage-volontes": _entourage,
}


def resource_type_of(slug: str, fields: Mapping[str, Any]) -> str:
    """The resource type an entry of ``slug`` is shown as."""
    if slug == "entourage-volontes":
        return "Consent" if fields.get("kind") in WISHES else "RelatedPerson"
    return next(t for t, slugs in RESOURCE_RUBRICS.items() if slug in slugs)


def resource_id(patient: PatientIdentity, entry_id: object) -> str:
    """``<patient key>-<entry id>`` (the entry id alone without a key)."""
    return f"{patient.key}-{entry_id}" if patient.key else str(entry_id)


def fields_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's own fields (without its id and who added it)."""
    return {k: v for k, v in entry.items() if k not in RESERVED}


def _author_ref(kind: str, name: str, patient: PatientIdentity) -> dict[str, Any] | None:
    if kind == "patient":
        return {**patient.reference(), "display": "Patient"}
    if kind == "professional":
        return {"type": "Practitioner", "display": name}
    return None


def _add_author(data: dict[str, Any], kind: str, name: str, patient: PatientIdentity) -> None:
    rtype = data["resourceType"]
    ref = _author_ref(kind, name, patient)
    if rtype in ("Condition", "AllergyIntolerance", "Procedure") and ref:
        data["recorder"], data["asserter"] = ref, ref
    elif rtype == "MedicationStatement" and ref:
        data["informationSource"] = ref
    elif rtype == "Observation":
        if ref:
            data["performer"] = [ref]
        elif kind == "application":
            data["device"] = {"display": name}


def _meta(data: dict[str, Any], slug: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(entry.get("added_by_kind") or "patient")
    name = str(entry.get("added_by") or "patient")
    r = rubric(slug)
    meta: dict[str, Any] = {**data.get("meta", {}), "source": f"urn:mssante:profile:{kind}",
                            "tag": [{"system": ADDED_BY_SYSTEM, "code": kind, "display": name},
                                    {"system": RUBRIC_SYSTEM, "code": slug,
                                     "display": r.title if r else slug}]}
    if entry.get("added_at"):
        meta["lastUpdated"] = entry["added_at"]
    return meta


def to_resource(slug: str, entry: Mapping[str, Any], patient: PatientIdentity, *,
                today: str = "") -> dict[str, Any]:
    """The FHIR resource (JSON, validated by ``fhir.resources``) of one profile entry.

    Args:
        slug: the entry's rubric.
        entry: ``ProfileEntryInfo.as_json()`` (or just the fields).
        patient: whose entry it is.
        today: ``YYYY-MM-DD``; a treatment ended before it is ``completed``, otherwise
            ``active`` (without it, any treatment with an end is ``completed``).

    Raises:
        KeyError: ``slug`` is not a rubric.
    """
    fields = fields_of(entry)
    data = _TO[slug](fields, today or "9999-12-31")
    if entry.get("id") is not None:
        data["id"] = resource_id(patient, entry["id"])
    data["meta"] = _meta(data, slug, entry)
    data[_SUBJECT.get(data["resourceType"], "patient")] = patient.reference()
    _add_author(data, str(entry.get("added_by_kind") or "patient"),
                str(entry.get("added_by") or ""), patient)
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    return data


def _patient_resource(patient: PatientIdentity) -> dict[str, Any]:
    data: dict[str, Any] = {"resourceType": "Patient", "id": patient.key or "patient",
                            "identifier": [{"system": patient.system, "value": patient.ins}]}
    if patient.family or patient.given:
        name: dict[str, Any] = {"use": "official"}
        if patient.family:
            name["family"] = patient.family
        if patient.given:
            name["given"] = [patient.given]
        data["name"] = [name]
    if patient.birth_date:
        data["birthDate"] = patient.birth_date
    if patient.gender:
        data["gender"] = patient.gender
    return data


def _document_resource(doc: BundleDocument, patient: PatientIdentity) -> dict[str, Any]:
    attachment: dict[str, Any] = {"contentType": doc.content_type, "url": doc.url,
                                  "title": doc.title}
    if doc.size is not None:
        attachment["size"] = doc.size
    data: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": doc.id, "status": "current",
        "subject": patient.reference(), "date": doc.date.astimezone(UTC).isoformat(),
        "description": doc.title, "content": [{"attachment": attachment}]}
    if doc.label:
        data["category"] = [{"text": doc.label}]
    return data


Entries = Mapping[str, Sequence[Mapping[str, Any]]] | Iterable[tuple[str, Mapping[str, Any]]]


def _pairs(entries: Entries) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(entries, Mapping):
        return [(slug, e) for slug, listed in entries.items() for e in listed]
    return list(entries)


def _full_url(resource: Mapping[str, Any]) -> str:
    name = f"{resource['resourceType']}/{resource.get('id') or uuid.uuid4()}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def profile_bundle(patient: PatientIdentity, entries: Entries,
                   documents: Iterable[BundleDocument | Mapping[str, Any]] = (), *,
                   today: str = "", now: datetime | None = None) -> dict[str, Any]:
    """A FHIR R4 Bundle of type ``collection``: the Patient, every profile entry as its
    resource, and a DocumentReference per document; validated by ``fhir.resources``.

    Args:
        patient: the patient (INS, name, birth date, gender for the Patient resource).
        entries: ``{"<slug>": [entries]}`` (the ``rubrics`` of ``GET /api/profile``) or
            (slug, entry) pairs; entries as ``ProfileEntryInfo.as_json()`` gives them.
            Computed measures (the BMI) are included like the others.
        documents: `BundleDocument`s, or DocumentReference JSON made elsewhere.
        today: as for :func:`to_resource`.
        now: the bundle's timestamp (default: now).
    """
    resources = [_patient_resource(patient)]
    resources += [to_resource(slug, e, patient, today=today) for slug, e in _pairs(entries)]
    for doc in documents:
        resources.append(_document_resource(doc, patient) if isinstance(doc, BundleDocument)
                         else dict(doc))
    bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection",
              "timestamp": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
              "entry": [{"fullUrl": _full_url(r), "resource": r} for r in resources]}
    Bundle.model_validate(bundle)
    return bundle
