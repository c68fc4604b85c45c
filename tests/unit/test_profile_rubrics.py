"""The medical profile's rubrics as a table: accepted entries (and what is stored), refused
entries (and the French message on which field), measures' ranges, units and the BMI."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mailserver.profile import (
    MEASURES,
    RUBRIC_SLUGS,
    EntryInvalid,
    details,
    headline,
    latest_imc,
    rubric,
    validate,
)

TODAY = date(2026, 11, 20)

# (rubric, raw input, what is stored)
ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("maladies", {"condition": "Diabète de type 2", "since": "2015-03-01", "status": "active",
                  "cim10": "e11.9", "notes": "suivi tous les 3 mois"},
     {"condition": "Diabète de type 2", "since": "2015-03-01", "status": "active",
      "cim10": "E11.9", "notes": "suivi tous les 3 mois"}),
    ("maladies", {"condition": "Asthme", "status": "resolved", "since": "01/09/1999"},
     {"condition": "Asthme", "status": "resolved", "since": "1999-09-01"}),
    ("historique-soins", {"date": "2026-10-02", "kind": "consultation",
                          "professional": "Dr Claire Martin", "notes": "bilan annuel"},
     {"date": "2026-10-02", "kind": "consultation", "professional": "Dr Claire Martin",
      "notes": "bilan annuel"}),
    ("entourage-volontes", {"kind": "volontes", "text": "Je refuse l'acharnement."},
     {"kind": "volontes", "text": "Je refuse l'acharnement."}),
    ("entourage-volontes", {"kind": "don-organes", "position": "favorable",
                            "date": "2020-01-15"},
     {"kind": "don-organes", "position": "favorable", "date": "2020-01-15"}),
    ("entourage-volontes", {"kind": "directives-anticipees", "document_id": 12},
     {"kind": "directives-anticipees", "document_id": 12}),
    ("entourage-volontes", {"kind": "directives-anticipees", "text": "Pas de réanimation.",
                            "date": "2024-05-01"},
     {"kind": "directives-anticipees", "text": "Pas de réanimation.", "date": "2024-05-01"}),
    ("entourage-volontes", {"kind": "personne-confiance", "name": "Paul Dupont",
                            "relationship": "frère", "phone": "06 12 34 56 78",
                            "email": "paul@exemple.fr", "address": "1 rue de la Paix, Paris"},
     {"kind": "personne-confiance", "name": "Paul Dupont", "relationship": "frère",
      "phone": "06 12 34 56 78", "email": "paul@exemple.fr",
      "address": "1 rue de la Paix, Paris"}),
    ("entourage-volontes", {"kind": "proche", "name": "Léa Dupont", "phone": "+33 6 12 34 56 78"},
     {"kind": "proche", "name": "Léa Dupont", "phone": "+33 6 12 34 56 78"}),
    ("allergies", {"substance": "Pénicilline", "reaction": "urticaire", "severity": "modérée"},
     {"substance": "Pénicilline", "reaction": "urticaire", "severity": "modérée"}),
    ("allergies", {"substance": "Arachide", "reaction": "", "severity": None},
     {"substance": "Arachide"}),
    ("traitements", {"medicine": "Metformine 500 mg", "dose": "1 comprimé",
                     "frequency": "2 fois par jour", "start": "2015-03-01", "end": "2027-03-01",
                     "prescriber": "Dr Martin", "code": "3400935955838"},
     {"medicine": "Metformine 500 mg", "dose": "1 comprimé", "frequency": "2 fois par jour",
      "start": "2015-03-01", "end": "2027-03-01", "prescriber": "Dr Martin",
      "code": "3400935955838"}),
    ("traitements", {"medicine": "Doliprane", "code": "n02be01"},
     {"medicine": "Doliprane", "code": "N02BE01"}),
    ("vaccinations", {"vaccine": "DTP", "date": "2025-06-01", "dose_number": 3, "lot": "A12B",
                      "code": "J07CA01"},
     {"vaccine": "DTP", "date": "2025-06-01", "dose_number": 3, "lot": "A12B",
      "code": "J07CA01"}),
    ("vaccinations", {"vaccine": "Grippe", "date": "2026-10-10", "dose_number": "1"},
     {"vaccine": "Grippe", "date": "2026-10-10", "dose_number": 1}),
    ("hospitalisations", {"date": "2019-04-02", "establishment": "CHU de Nantes",
                          "procedure": "Appendicectomie"},
     {"date": "2019-04-02", "establishment": "CHU de Nantes", "procedure": "Appendicectomie"}),
    ("antecedents-familiaux", {"relative": "mere", "condition": "Cancer du sein",
                               "age_at_onset": 52, "cim10": "C50"},
     {"relative": "mere", "condition": "Cancer du sein", "age_at_onset": 52, "cim10": "C50"}),
    ("mesures", {"kind": "poids", "value": 72.5, "unit": "kg", "date": "2026-11-20"},
     {"kind": "poids", "value": 72.5, "unit": "kg", "date": "2026-11-20"}),
    ("mesures", {"kind": "poids", "value": "72,5", "date": "2026-11-20"},
     {"kind": "poids", "value": 72.5, "unit": "kg", "date": "2026-11-20"}),
    ("mesures", {"kind": "taille", "value": 168, "date": "2026-11-20"},
     {"kind": "taille", "value": 168, "unit": "cm", "date": "2026-11-20"}),
    ("mesures", {"kind": "tension", "systolic": 128, "diastolic": 82, "unit": "mmHg",
                 "date": "2026-11-20"},
     {"kind": "tension", "systolic": 128, "diastolic": 82, "unit": "mmHg",
      "date": "2026-11-20"}),
    ("mesures", {"kind": "frequence-cardiaque", "value": "64", "date": "2026-11-19"},
     {"kind": "frequence-cardiaque", "value": 64, "unit": "bpm", "date": "2026-11-19"}),
    ("mesures", {"kind": "glycemie", "value": 1.05, "unit": "g/L", "date": "2026-11-19",
                 "notes": "à jeun"},
     {"kind": "glycemie", "value": 1.05, "unit": "g/L", "date": "2026-11-19",
      "notes": "à jeun"}),
    ("mesures", {"kind": "glycemie", "value": 5.55, "unit": "mmol/L", "date": "2026-11-19"},
     {"kind": "glycemie", "value": 1.0, "unit": "g/L", "date": "2026-11-19"}),
    ("mesures", {"kind": "temperature", "value": "38,4", "unit": "°C", "date": "2026-11-19"},
     {"kind": "temperature", "value": 38.4, "unit": "°C", "date": "2026-11-19"}),
    ("mesures", {"kind": "douleur", "value": 0, "date": "2026-11-19"},
     {"kind": "douleur", "value": 0, "unit": "/10", "date": "2026-11-19"}),
    ("mesures", {"kind": "saturation", "value": 97, "unit": "%", "date": "2026-11-19"},
     {"kind": "saturation", "value": 97, "unit": "%", "date": "2026-11-19"}),
    ("mesures", {"kind": "perimetre-cranien", "value": 35.5, "date": "2026-11-19"},
     {"kind": "perimetre-cranien", "value": 35.5, "unit": "cm", "date": "2026-11-19"}),
    # What an API client reads back may be sent back: reserved keys are ignored.
    ("allergies", {"id": 3, "added_by": "patient", "added_at": "2026-01-01T00:00:00+00:00",
                   "substance": "Latex"}, {"substance": "Latex"}),
]

# (id, rubric, raw input, field in error, French message)
REFUSED: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("maladie sans nom", "maladies", {"status": "active"}, "condition",
     "Ce champ est obligatoire."),
    ("maladie sans état", "maladies", {"condition": "Asthme"}, "status",
     "Ce champ est obligatoire."),
    ("état inconnu", "maladies", {"condition": "Asthme", "status": "finie"}, "status",
     "Choisissez une valeur de la liste (En cours, Guéri ou terminé)."),
    ("date future", "maladies", {"condition": "Asthme", "status": "active",
                                 "since": "2026-11-21"}, "since",
     "La date ne peut pas être dans le futur."),
    ("date impossible", "maladies", {"condition": "Asthme", "status": "active",
                                     "since": "2026-02-30"}, "since",
     "Indiquez une date valide (jour/mois/année)."),
    ("date avant 1900", "historique-soins", {"date": "1899-12-31", "kind": "consultation"},
     "date", "La date ne peut pas être antérieure à 1900."),
    ("code CIM-10", "maladies", {"condition": "Asthme", "status": "active", "cim10": "1234"},
     "cim10", "Un code CIM-10 est une lettre suivie de deux chiffres, parfois d'un point et "
              "d'un ou deux chiffres (par exemple E11 ou E11.9)."),
    ("champ inconnu", "allergies", {"substance": "Latex", "gravite": "forte"}, "gravite",
     "Ce champ n'existe pas dans cette rubrique."),
    ("texte attendu", "allergies", {"substance": 42}, "substance", "Saisissez un texte."),
    ("texte trop long", "allergies", {"substance": "x" * 201}, "substance",
     "Ce texte est trop long (200 caractères au plus)."),
    ("soin sans type", "historique-soins", {"date": "2026-01-01"}, "kind",
     "Ce champ est obligatoire."),
    ("entourage sans type", "entourage-volontes", {"name": "Paul"}, "kind",
     "Choisissez un type parmi : volontes, don-organes, directives-anticipees, "
     "personne-confiance, proche."),
    ("directives vides", "entourage-volontes", {"kind": "directives-anticipees"}, "text",
     "Écrivez vos directives ou choisissez un document de votre espace Documents."),
    ("document invalide", "entourage-volontes", {"kind": "directives-anticipees",
                                                 "document_id": "abc"}, "document_id",
     "Choisissez un document de votre espace Documents."),
    ("don d'organes sans date", "entourage-volontes", {"kind": "don-organes",
                                                        "position": "opposé"}, "date",
     "Ce champ est obligatoire."),
    ("téléphone", "entourage-volontes", {"kind": "proche", "name": "Léa", "phone": "abc"},
     "phone", "Indiquez un numéro de téléphone valide (par exemple 06 12 34 56 78)."),
    ("e-mail", "entourage-volontes", {"kind": "personne-confiance", "name": "Paul",
                                      "email": "paul@"}, "email",
     "Indiquez une adresse e-mail valide (par exemple nom@exemple.fr)."),
    ("fin avant début", "traitements", {"medicine": "X", "start": "2026-01-10",
                                        "end": "2026-01-01"}, "end",
     "La fin ne peut pas être avant le début."),
    ("code médicament", "traitements", {"medicine": "X", "code": "12"}, "code",
     "Le code d'un médicament ou d'un vaccin est son code CIS (8 chiffres), CIP (7 ou 13 "
     "chiffres) ou ATC (par exemple J07BB02)."),
    ("vaccin sans date", "vaccinations", {"vaccine": "DTP"}, "date",
     "Ce champ est obligatoire."),
    ("numéro de dose", "vaccinations", {"vaccine": "DTP", "date": "2026-01-01",
                                        "dose_number": 0}, "dose_number",
     "La valeur doit être comprise entre 1 et 20."),
    ("dose non entière", "vaccinations", {"vaccine": "DTP", "date": "2026-01-01",
                                          "dose_number": "1,5"}, "dose_number",
     "Indiquez un nombre entier."),
    ("hospitalisation sans motif", "hospitalisations", {"date": "2026-01-01",
                                                        "establishment": "CHU"}, "reason",
     "Indiquez le motif ou l'intervention."),
    ("parent inconnu", "antecedents-familiaux", {"relative": "voisin", "condition": "X"},
     "relative", "Choisissez une valeur de la liste (Mère, Père, Sœur, Frère, Fille, Fils, "
                 "Grand-mère maternelle, Grand-père maternel, Grand-mère paternelle, "
                 "Grand-père paternel, Tante, Oncle, Autre)."),
    ("âge au début", "antecedents-familiaux", {"relative": "pere", "condition": "X",
                                               "age_at_onset": 130}, "age_at_onset",
     "La valeur doit être comprise entre 0 et 120 ans."),
    ("mesure sans type", "mesures", {"value": 3, "date": "2026-01-01"}, "kind",
     "Choisissez un type parmi : poids, taille, tension, frequence-cardiaque, glycemie, "
     "temperature, douleur, saturation, perimetre-cranien."),
    ("IMC saisi", "mesures", {"kind": "imc", "value": 22, "date": "2026-01-01"}, "kind",
     "L'IMC est calculé à partir de votre dernier poids et de votre dernière taille : il ne "
     "se saisit pas."),
    ("poids hors limites", "mesures", {"kind": "poids", "value": 720, "date": "2026-01-01"},
     "value", "La valeur doit être comprise entre 0,3 et 500 kg."),
    ("taille en mètres", "mesures", {"kind": "taille", "value": 1.68, "date": "2026-01-01"},
     "value", "La valeur doit être comprise entre 20 et 260 cm."),
    ("mesure sans valeur", "mesures", {"kind": "poids", "date": "2026-01-01"}, "value",
     "Ce champ est obligatoire."),
    ("valeur non numérique", "mesures", {"kind": "poids", "value": "lourd",
                                         "date": "2026-01-01"}, "value",
     "Indiquez un nombre (par exemple 72,5)."),
    ("booléen", "mesures", {"kind": "poids", "value": True, "date": "2026-01-01"}, "value",
     "Indiquez un nombre (par exemple 72,5)."),
    ("mesure future", "mesures", {"kind": "poids", "value": 70, "date": "2026-11-21"}, "date",
     "La date ne peut pas être dans le futur."),
    ("mauvaise unité", "mesures", {"kind": "poids", "value": 70, "unit": "lb",
                                   "date": "2026-01-01"}, "unit", "Unité possible : kg."),
    ("tension incomplète", "mesures", {"kind": "tension", "systolic": 120,
                                       "date": "2026-01-01"}, "diastolic",
     "Ce champ est obligatoire."),
    ("tension inversée", "mesures", {"kind": "tension", "systolic": 80, "diastolic": 120,
                                     "date": "2026-01-01"}, "systolic",
     "La pression systolique (le premier chiffre) doit être supérieure à la diastolique."),
    ("systolique hors limites", "mesures", {"kind": "tension", "systolic": 400,
                                            "diastolic": 80, "date": "2026-01-01"},
     "systolic", "La valeur doit être comprise entre 50 et 300 mmHg."),
    ("tension avec valeur", "mesures", {"kind": "tension", "value": 12, "systolic": 120,
                                        "diastolic": 80, "date": "2026-01-01"}, "value",
     "Ce champ n'existe pas dans cette rubrique."),
    ("glycémie mmol/L hors limites", "mesures", {"kind": "glycemie", "value": 80,
                                                 "unit": "mmol/L", "date": "2026-01-01"},
     "value", "La valeur doit être comprise entre 0,56 et 55,5 mmol/L."),
    ("glycémie unité", "mesures", {"kind": "glycemie", "value": 1, "unit": "mg/dL",
                                   "date": "2026-01-01"}, "unit",
     "Unité possible : g/L ou mmol/L."),
    ("température en Fahrenheit", "mesures", {"kind": "temperature", "value": 98.6,
                                              "date": "2026-01-01"}, "value",
     "La valeur doit être comprise entre 30 et 45 °C."),
    ("douleur sur 10", "mesures", {"kind": "douleur", "value": 11, "date": "2026-01-01"},
     "value", "La valeur doit être comprise entre 0 et 10 /10."),
    ("douleur entière", "mesures", {"kind": "douleur", "value": 3.5, "date": "2026-01-01"},
     "value", "Indiquez un nombre entier."),
    ("saturation", "mesures", {"kind": "saturation", "value": 101, "date": "2026-01-01"},
     "value", "La valeur doit être comprise entre 50 et 100 %."),
    ("fréquence cardiaque", "mesures", {"kind": "frequence-cardiaque", "value": 400,
                                        "date": "2026-01-01"}, "value",
     "La valeur doit être comprise entre 20 et 300 bpm."),
    ("périmètre crânien", "mesures", {"kind": "perimetre-cranien", "value": 90,
                                      "date": "2026-01-01"}, "value",
     "La valeur doit être comprise entre 20 et 70 cm."),
]


def test_nine_rubrics_with_their_slugs() -> None:
    assert RUBRIC_SLUGS == ("maladies", "historique-soins", "entourage-volontes", "allergies",
                            "traitements", "vaccinations", "hospitalisations", "mesures",
                            "antecedents-familiaux")


@pytest.mark.parametrize(("slug", "raw", "stored"), ACCEPTED,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(ACCEPTED)])
def test_accepted(slug: str, raw: dict[str, Any], stored: dict[str, Any]) -> None:
    r = rubric(slug)
    assert r is not None
    assert validate(r, raw, TODAY) == stored
    assert headline(r, stored)
    assert details(r, stored)


@pytest.mark.parametrize(("slug", "raw", "field", "message"), [x[1:] for x in REFUSED],
                         ids=[x[0] for x in REFUSED])
def test_refused(slug: str, raw: dict[str, Any], field: str, message: str) -> None:
    r = rubric(slug)
    assert r is not None
    with pytest.raises(EntryInvalid) as info:
        validate(r, raw, TODAY)
    assert info.value.errors.get(field) == message, info.value.errors
    assert all(m and " : " in m for m in info.value.messages())


def test_every_error_is_reported_at_once() -> None:
    r = rubric("vaccinations")
    assert r is not None
    with pytest.raises(EntryInvalid) as info:
        validate(r, {"date": "2030-01-01", "dose_number": -1}, TODAY)
    assert set(info.value.errors) == {"vaccine", "date", "dose_number"}
    assert info.value.messages()[0] == "Vaccin : ce champ est obligatoire."


def test_every_measure_kind_has_a_loinc_code_and_a_range() -> None:
    assert {m.slug for m in MEASURES} == {
        "poids", "taille", "imc", "tension", "frequence-cardiaque", "glycemie", "temperature",
        "douleur", "saturation", "perimetre-cranien"}
    for m in MEASURES:
        assert m.loinc and m.low < m.high and m.unit


def test_imc_from_the_latest_weight_and_height() -> None:
    entries = [
        {"id": 1, "kind": "poids", "value": 80, "date": "2026-01-01"},
        {"id": 2, "kind": "poids", "value": 72.5, "date": "2026-11-01"},
        {"id": 3, "kind": "taille", "value": 170, "date": "2020-05-01"},
        {"id": 4, "kind": "tension", "systolic": 120, "diastolic": 80, "date": "2026-11-02"},
    ]
    assert latest_imc(entries) == {"kind": "imc", "value": 25.1, "unit": "kg/m²",
                                   "date": "2026-11-01"}
    assert latest_imc(entries[:2]) is None
