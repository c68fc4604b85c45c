"""The profile ↔ FHIR mapping as tables: every rubric's entry → resource → entry, the codes
each resource carries, who added it, the collection Bundle, and French refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from attachments.labels import Label
from dossier_bridge.access import ACCESS_MATRIX, Viewer, ViewerRole, may_use_profile
from dossier_bridge.fhir.profile_entries import (
    ResourceInvalid,
    entry_from_resource,
    patient_of,
    raw_fields,
)
from dossier_bridge.fhir.profile_resources import (
    ICD10,
    LOINC,
    UCUM,
    VITAL_SIGNS,
    BundleDocument,
    PatientIdentity,
    profile_bundle,
    resource_type_of,
    to_resource,
)
from mailserver.profile import EntryInvalid, rubric, validate

TODAY = date(2026, 11, 30)
PATIENT = PatientIdentity("279035121518989", "urn:oid:1.2.250.1.213.1.4.10", key="7",
                          family="Dupont", given="Marie", birth_date="1979-03-12",
                          gender="female")

# (rubric, fields, resource type): one row per kind of entry, every field filled.
ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("maladies", {"condition": "Diabète de type 2", "since": "2019-05-01", "status": "active",
                  "cim10": "E11.9", "notes": "Suivi trimestriel"}, "Condition"),
    ("maladies", {"condition": "Rougeole", "status": "resolved"}, "Condition"),
    ("historique-soins", {"date": "2026-10-02", "kind": "teleconsultation",
                          "professional": "Dr Claire Martin", "notes": "Renouvellement"},
     "Procedure"),
    ("entourage-volontes", {"kind": "personne-confiance", "name": "Paul Dupont",
                            "relationship": "frère", "phone": "06 12 34 56 78",
                            "email": "paul@exemple.fr", "address": "1 rue de Paris, Lyon"},
     "RelatedPerson"),
    ("entourage-volontes", {"kind": "proche", "name": "Anne Durand"}, "RelatedPerson"),
    ("allergies", {"substance": "Pénicilline", "reaction": "urticaire",
                   "severity": "modérée", "notes": "Depuis l'enfance"}, "AllergyIntolerance"),
    ("allergies", {"substance": "Arachide", "severity": "sévère"}, "AllergyIntolerance"),
    ("allergies", {"substance": "Pollen"}, "AllergyIntolerance"),
    ("traitements", {"medicine": "Metformine 500 mg", "dose": "1 comprimé",
                     "frequency": "2 fois par jour", "start": "2019-05-02",
                     "end": "2027-01-01", "prescriber": "Dr Claire Martin",
                     "code": "A10BA02"}, "MedicationStatement"),
    ("traitements", {"medicine": "Doliprane", "code": "60234100"}, "MedicationStatement"),
    ("vaccinations", {"vaccine": "Vaxigrip", "date": "2025-10-15", "dose_number": 2,
                      "lot": "AB123", "code": "J07BB02"}, "Immunization"),
    ("hospitalisations", {"date": "2018-02-10", "establishment": "CHU de Lyon",
                          "reason": "Appendicite", "procedure": "Appendicectomie",
                          "notes": "Sans complication"}, "Procedure"),
    ("hospitalisations", {"date": "2018-02-10", "reason": "Chute"}, "Procedure"),
    ("mesures", {"kind": "poids", "date": "2026-11-20", "value": 72.5, "unit": "kg"},
     "Observation"),
    ("mesures", {"kind": "tension", "date": "2026-11-20", "systolic": 128, "diastolic": 82,
                 "unit": "mmHg", "notes": "Au repos"}, "Observation"),
    ("mesures", {"kind": "glycemie", "date": "2026-11-20", "value": 1.05, "unit": "g/L"},
     "Observation"),
    ("mesures", {"kind": "douleur", "date": "2026-11-20", "value": 4, "unit": "/10"},
     "Observation"),
    ("mesures", {"kind": "temperature", "date": "2026-11-20", "value": 38.2, "unit": "°C"},
     "Observation"),
    ("antecedents-familiaux", {"relative": "mere", "condition": "Cancer du sein",
                               "cim10": "C50", "age_at_onset": 52, "notes": "Opérée"},
     "FamilyMemberHistory"),
]


def _entry(slug: str, fields: dict[str, Any], kind: str = "professional",
           name: str = "Dr Claire Martin") -> dict[str, Any]:
    stored = validate(rubric(slug), fields, TODAY)  # type: ignore[arg-type]
    return {"id": 12, "added_by": name, "added_by_kind": kind,
            "added_at": "2026-11-20T09:00:00+00:00", **stored}


@pytest.mark.parametrize(("slug", "fields", "rtype"), ROWS,
                         ids=[f"{r[0]}-{n}" for n, r in enumerate(ROWS)])
def test_round_trip(slug: str, fields: dict[str, Any], rtype: str) -> None:
    entry = _entry(slug, fields)
    resource = to_resource(slug, entry, PATIENT, today=TODAY.isoformat())
    assert resource["resourceType"] == rtype == resource_type_of(slug, entry)
    get_fhir_model_class(rtype).model_validate(resource)
    assert resource["id"] == "7-12"
    assert patient_of(resource) == (PATIENT.system, PATIENT.ins)
    assert resource["meta"]["source"] == "urn:mssante:profile:professional"
    back_slug, back = entry_from_resource(resource, TODAY)
    assert (back_slug, back) == (slug, validate(rubric(slug), fields, TODAY))  # type: ignore


def test_measure_is_a_vital_sign_with_loinc_and_ucum() -> None:
    weight = to_resource("mesures", _entry("mesures", ROWS[13][1]), PATIENT)
    assert weight["meta"]["profile"] == [VITAL_SIGNS]
    assert weight["category"][0]["coding"][0]["code"] == "vital-signs"
    assert weight["code"]["coding"][0] == {"system": LOINC, "code": "29463-7"}
    assert weight["valueQuantity"] == {"value": 72.5, "unit": "kg", "system": UCUM,
                                       "code": "kg"}
    assert weight["performer"] == [{"type": "Practitioner", "display": "Dr Claire Martin"}]
    bp = to_resource("mesures", _entry("mesures", ROWS[14][1]), PATIENT)
    assert bp["code"]["coding"][0]["code"] == "85354-9" and "valueQuantity" not in bp
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"],
             c["valueQuantity"]["code"]) for c in bp["component"]] == [
        ("8480-6", 128, "mm[Hg]"), ("8462-4", 82, "mm[Hg]")]


@pytest.mark.parametrize(("slug", "row", "path", "expected"), [
    ("maladies", 0, ("code", "coding", 0), {"system": ICD10, "code": "E11.9"}),
    ("maladies", 0, ("clinicalStatus", "coding", 0, "code"), "active"),
    ("maladies", 1, ("clinicalStatus", "coding", 0, "code"), "resolved"),
    ("maladies", 1, ("code",), {"text": "Rougeole"}),
    ("allergies", 5, ("reaction", 0, "severity"), "moderate"),
    ("allergies", 6, ("reaction", 0, "severity"), "severe"),
    ("traitements", 8, ("medicationCodeableConcept", "coding", 0, "system"),
     "http://www.whocc.no/atc"),
    ("traitements", 9, ("medicationCodeableConcept", "coding", 0, "system"),
     "urn:oid:1.2.250.1.213.2.3.1"),
    ("traitements", 8, ("effectivePeriod",), {"start": "2019-05-02", "end": "2027-01-01"}),
    ("traitements", 8, ("status",), "active"),
    ("traitements", 8, ("dosage", 0, "text"), "1 comprimé"),
    ("vaccinations", 10, ("protocolApplied", 0, "doseNumberPositiveInt"), 2),
    ("vaccinations", 10, ("lotNumber",), "AB123"),
    ("vaccinations", 10, ("occurrenceDateTime",), "2025-10-15"),
    ("hospitalisations", 11, ("location", "display"), "CHU de Lyon"),
    ("hospitalisations", 11, ("reasonCode", 0, "text"), "Appendicite"),
    ("hospitalisations", 11, ("performedDateTime",), "2018-02-10"),
    ("historique-soins", 2, ("category", "coding", 0, "code"), "historique-soins"),
    ("antecedents-familiaux", 18, ("relationship", "coding", 0, "code"), "MTH"),
    ("antecedents-familiaux", 18, ("condition", 0, "onsetAge", "code"), "a"),
    ("entourage-volontes", 3, ("telecom",), [{"system": "phone", "value": "06 12 34 56 78"},
                                             {"system": "email", "value": "paul@exemple.fr"}]),
])
def test_codes(slug: str, row: int, path: tuple[Any, ...], expected: Any) -> None:
    value: Any = to_resource(slug, _entry(slug, ROWS[row][1]), PATIENT,
                             today=TODAY.isoformat())
    for step in path:
        value = value[step]
    assert value == expected


@pytest.mark.parametrize(("kind", "name", "element", "expected"), [
    ("professional", "Dr Claire Martin", "recorder",
     {"type": "Practitioner", "display": "Dr Claire Martin"}),
    ("patient", "patient", "recorder",
     {**PATIENT.reference(), "display": "Patient"}),
    ("application", "Appli Tension", "recorder", None),
])
def test_who_added(kind: str, name: str, element: str, expected: Any) -> None:
    resource = to_resource("allergies", _entry("allergies", ROWS[5][1], kind, name), PATIENT)
    assert resource.get(element) == expected
    assert resource["meta"]["source"] == f"urn:mssante:profile:{kind}"
    assert {"system": "urn:mssante:profile:added-by", "code": kind,
            "display": name} in resource["meta"]["tag"]


def test_application_measure_names_its_device() -> None:
    obs = to_resource("mesures", _entry("mesures", ROWS[13][1], "application", "Balance"),
                      PATIENT)
    assert obs["device"] == {"display": "Balance"} and "performer" not in obs


@pytest.mark.parametrize("fields", [
    {"kind": "volontes", "text": "Pas d'acharnement thérapeutique."},
    {"kind": "don-organes", "position": "opposé", "date": "2020-01-01"},
    {"kind": "directives-anticipees", "text": "Voir mon document <important> & daté",
     "date": "2021-06-01"},
])
def test_wishes_are_consents(fields: dict[str, Any]) -> None:
    consent = to_resource("entourage-volontes", _entry("entourage-volontes", fields), PATIENT)
    assert consent["resourceType"] == "Consent"
    assert consent["patient"] == PATIENT.reference()
    assert consent["scope"]["coding"][0]["code"] == "adr"
    with pytest.raises(ResourceInvalid):
        entry_from_resource(consent, TODAY)


def test_glucose_in_moles_is_converted() -> None:
    obs = to_resource("mesures", _entry("mesures", ROWS[15][1]), PATIENT)
    obs["code"]["coding"][0]["code"] = "15074-8"
    obs["valueQuantity"] = {"value": 5.55, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    assert entry_from_resource(obs, TODAY)[1]["value"] == 1.0


def test_treatment_ended_before_today_is_completed() -> None:
    entry = _entry("traitements", {"medicine": "Amoxicilline", "start": "2026-01-01",
                                   "end": "2026-01-08"})
    assert to_resource("traitements", entry, PATIENT, today="2026-11-30")["status"] == \
        "completed"


def _bp(systolic: int, diastolic: int, day: str = "2026-11-20") -> dict[str, Any]:
    return to_resource("mesures", _entry("mesures", {
        "kind": "tension", "date": day, "systolic": systolic, "diastolic": diastolic,
        "unit": "mmHg"}), PATIENT)


@pytest.mark.parametrize(("resource", "error"), [
    ({"resourceType": "Patient"}, "Ce type de ressource ne peut pas être ajouté"),
    ({"resourceType": "Observation", "status": "final",
      "code": {"coding": [{"system": LOINC, "code": "1234-5"}]}},
     "Cette mesure n'est pas prise en charge"),
    ({"resourceType": "AllergyIntolerance", "patient": {"display": "x"},
      "reaction": "urticaire"}, "La ressource FHIR n'est pas valide (élément « reaction"),
])
def test_resource_refusals(resource: dict[str, Any], error: str) -> None:
    with pytest.raises(ResourceInvalid) as exc:
        entry_from_resource(resource, TODAY)
    assert exc.value.text.startswith(error)


@pytest.mark.parametrize(("resource", "field", "message"), [
    (_bp(300, 82) | {"component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 90, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}]},
     "systolic", "La pression systolique"),
    (_bp(128, 82) | {"effectiveDateTime": "2099-01-01"}, "date",
     "La date ne peut pas être dans le futur."),
    ({"resourceType": "AllergyIntolerance", "patient": PATIENT.reference()},
     "substance", "Ce champ est obligatoire."),
    ({"resourceType": "Observation", "status": "final", "effectiveDateTime": "2026-11-20",
      "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
      "valueQuantity": {"value": 7250, "unit": "kg"}},
     "value", "La valeur doit être comprise entre"),
])
def test_entry_refusals_are_french(resource: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(EntryInvalid) as exc:
        entry_from_resource(resource, TODAY)
    assert exc.value.errors[field].startswith(message)


def test_raw_fields_of_a_foreign_client() -> None:
    """A resource written by other software (names as given/family, ICD-10 only as coding)."""
    slug, raw = raw_fields({
        "resourceType": "RelatedPerson", "patient": PATIENT.reference(),
        "name": [{"given": ["Jeanne"], "family": "Roux"}],
        "address": [{"line": ["3 place Bellecour"]}]})
    assert (slug, raw) == ("entourage-volontes", {"kind": "proche", "name": "Jeanne Roux",
                                                  "address": "3 place Bellecour"})


def test_profile_bundle() -> None:
    rubrics: dict[str, list[dict[str, Any]]] = {}
    for slug, fields, _t in ROWS:
        rubrics.setdefault(slug, []).append(_entry(slug, fields) | {"id": len(rubrics) * 100
                                                                      + len(rubrics[slug])})
    rubrics["entourage-volontes"].append(_entry("entourage-volontes",
                                                {"kind": "volontes", "text": "Aucune"}))
    doc = BundleDocument("doc-1", "Compte rendu", "application/pdf", "documents/1.pdf",
                         datetime(2026, 11, 2, tzinfo=UTC), 1234, "Comptes rendus")
    bundle = profile_bundle(PATIENT, rubrics, [doc], today=TODAY.isoformat())
    Bundle.model_validate(bundle)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert bundle["type"] == "collection" and types[0] == "Patient"
    assert types.count("Observation") == 5 and types.count("Consent") == 1
    assert types[-1] == "DocumentReference" and len(types) == len(ROWS) + 3
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(types)
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"] == [{"system": PATIENT.system, "value": PATIENT.ins}]
    assert patient["name"] == [{"use": "official", "family": "Dupont", "given": ["Marie"]}]
    pairs = profile_bundle(PATIENT, [("allergies", _entry("allergies", ROWS[5][1]))])
    assert [e["resource"]["resourceType"] for e in pairs["entry"]] == [
        "Patient", "AllergyIntolerance"]


# Who may read and add to the profile (dossier_bridge.access.may_use_profile), as a table.
@pytest.mark.parametrize(("role", "profession", "bal_type", "allowed"), [
    ("treating_doctor", "10", "PER", True),
    ("consented", "10", "PER", True),
    ("consented", "21", "PER", True),   # pharmacist: reads "Ma santé en résumé"
    ("consented", "60", "PER", True),   # nurse
    ("consented", "26", "PER", False),  # audioprothésiste: does not
    ("consented", "98", "PER", False),
    ("consented", None, "APP", True),
    ("consented", None, "ORG", True),
    ("consented", None, "PER", False),
    ("no_consent", "10", "PER", False),
    ("no_consent", None, "APP", False),
    ("other", "10", "PER", False),
    ("patient", None, None, False),
])
def test_who_may_use_the_profile(role: str, profession: str | None, bal_type: str | None,
                                 allowed: bool) -> None:
    viewer = Viewer(ViewerRole(role), 1, profession)
    assert may_use_profile(viewer, bal_type) is allowed


def test_profile_professions_follow_the_synthesis_column() -> None:
    assert {p for p in ACCESS_MATRIX if may_use_profile(Viewer(ViewerRole.CONSENTED, 1, p))} \
        == {p for p, labels in ACCESS_MATRIX.items() if Label.SYNTHESE in labels}
