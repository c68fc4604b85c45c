"""A full medical profile in the ``GET /api/profile`` shape: every rubric, accents, a
professional's entries, an unknown field; and measures in bulk (tests and the benchmark)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from mailserver.synthesis import PatientHeader

TODAY = date(2026, 11, 20)

PATIENT = PatientHeader(
    given_names="Hélène Françoise",
    family_name="Lefèvre",
    birth_name="Barbier",
    birth_date=date(1979, 3, 12),
    ins="279035121518989",
    sex="F",
    birth_place="Évreux (27)",
    address=("12 rue des Lilas", "Bâtiment B", "75011 Paris"),
    phone="06 12 34 56 78",
    email="helene.lefevre@example.org",
    secure_address="279035121518989@patient.mssante.fr",
    treating_doctor="Dr Jérôme Martin",
)

DR = "Dr Jérôme Martin"


def _meta(n: int, by: str | None = None) -> dict[str, Any]:
    return {"id": f"e{n:04d}", "added_by": by, "added_at": f"2026-0{1 + n % 9}-15T09:30:00Z"}


def full_profile() -> dict[str, Any]:
    """Every rubric with at least one entry; the strings tests look for are unique."""
    rubrics: dict[str, list[dict[str, Any]]] = {
        "maladies": [
            {**_meta(1), "condition": "Asthme allergique", "code": "J45.0",
             "code_system": "CIM-10", "since": "2001-05-01", "status": "active",
             "notes": "Crises rares, surtout au printemps"},
            {**_meta(2, DR), "condition": "Hypertension artérielle", "code": "I10",
             "since": "2019", "status": "active"},
            {**_meta(3), "condition": "Fracture du poignet gauche", "since": "2015-07-14",
             "status": "resolved"},
        ],
        "historique-soins": [
            {**_meta(4), "date": "2026-09-02", "kind": "Séance de kinésithérapie",
             "professional": "Mme Agnès Dubœuf", "notes": "Rééducation de l'épaule"},
            {**_meta(5, DR), "date": "2026-10-10", "kind": "Consultation de cardiologie",
             "professional": "Dr Chloé Petit"},
        ],
        "entourage-volontes": [
            {**_meta(6), "kind": "personne_de_confiance", "name": "Paul Lefèvre",
             "relationship": "époux", "phone": "06 98 76 54 32",
             "email": "paul.lefevre@example.org"},
            {**_meta(7), "kind": "proche", "name": "Léa Barbier", "relationship": "sœur",
             "phone": "07 11 22 33 44"},
            {**_meta(8), "kind": "directives_anticipees",
             "text": "Je refuse tout acharnement thérapeutique.", "document_id": "doc-42",
             "date": "2024-02-01"},
            {**_meta(9), "kind": "don_organes", "position": "favorable au don d'organes",
             "date": "2023-06-30"},
            {**_meta(10), "kind": "volontes", "text": "Être soignée à domicile si possible."},
        ],
        "allergies": [
            {**_meta(11), "substance": "Pénicilline", "reaction": "urticaire",
             "severity": "modérée"},
            {**_meta(12, DR), "substance": "Pollen de bouleau", "reaction": "rhinite",
             "severity": "légère", "notes": "Désensibilisation envisagée"},
        ],
        "traitements": [
            {**_meta(13, DR), "medicine": "Ramipril 5 mg", "code": "3400936599596",
             "code_system": "CIP13", "dose": "1 comprimé", "frequency": "le matin",
             "start": "2019-04-01", "prescriber": "Dr Jérôme Martin"},
            {**_meta(14), "medicine": "Salbutamol 100 µg", "dose": "2 bouffées",
             "frequency": "si besoin", "start": "2001-06-01", "end": "2030-01-01",
             "prescriber": "Dr Océane Roux", "inhaler_colour": "bleu ciel"},
        ],
        "vaccinations": [
            {**_meta(15), "vaccine": "Grippe saisonnière", "date": "2025-10-15",
             "dose_number": 1, "lot": "FLU-25-4471"},
            {**_meta(16, DR), "vaccine": "Diphtérie, tétanos, poliomyélite", "date": "2019-03-02",
             "dose_number": 4, "lot": "DTP-19-0082"},
        ],
        "hospitalisations": [
            {**_meta(17), "date": "2015-07-14", "establishment": "Hôpital Saint-Éloi",
             "reason": "Chute à vélo", "procedure": "Ostéosynthèse du poignet"},
            {**_meta(18), "date": "2008-11-03", "establishment": "Clinique des Jonquilles",
             "reason": "Appendicite", "procedure": "Appendicectomie"},
        ],
        "mesures": [
            {**_meta(19), "kind": "poids", "value": 70.1, "unit": "kg", "date": "2026-01-05"},
            {**_meta(20), "kind": "poids", "value": 72.5, "unit": "kg", "date": "2026-11-02"},
            {**_meta(21), "kind": "taille", "value": 168, "unit": "cm", "date": "2025-03-01"},
            {**_meta(22, DR), "kind": "tension", "systolic": 128, "diastolic": 82,
             "unit": "mmHg", "date": "2026-10-10"},
            {**_meta(23), "kind": "tension", "systolic": 141, "diastolic": 91,
             "unit": "mmHg", "date": "2026-06-01"},
            {**_meta(24), "kind": "frequence_cardiaque", "value": 64, "unit": "bpm",
             "date": "2026-10-10"},
            {**_meta(25), "kind": "glycemie", "value": 0.94, "unit": "g/L",
             "date": "2026-09-12"},
            {**_meta(26), "kind": "temperature", "value": 37.8, "unit": "°C",
             "date": "2026-02-03"},
            {**_meta(27), "kind": "douleur", "value": 3, "unit": "/10", "date": "2026-09-02"},
            {**_meta(28), "kind": "saturation", "value": 97, "unit": "%", "date": "2026-02-03"},
        ],
        "antecedents-familiaux": [
            {**_meta(29), "relative": "mère", "condition": "Diabète de type 2",
             "code": "E11", "age_at_onset": 52},
            {**_meta(30), "relative": "grand-père paternel", "condition": "Infarctus du myocarde",
             "age_at_onset": 61},
        ],
    }
    return {"rubrics": rubrics}


# What the synthesis must show of each entry: one distinctive string per entry.
EXPECTED_TEXT = (
    "Asthme allergique", "J45.0", "Crises rares, surtout au printemps", "Hypertension artérielle",
    "Fracture du poignet gauche", "Séance de kinésithérapie", "Mme Agnès Dubœuf",
    "Consultation de cardiologie", "Dr Chloé Petit", "Paul Lefèvre", "époux", "Léa Barbier",
    "sœur", "Je refuse tout acharnement thérapeutique.", "favorable au don d'organes",
    "Être soignée à domicile si possible.", "Pénicilline", "urticaire", "modérée",
    "Pollen de bouleau", "Désensibilisation envisagée", "Ramipril 5 mg", "le matin",
    "Salbutamol 100 µg", "bleu ciel", "Grippe saisonnière", "FLU-25-4471",
    "Diphtérie, tétanos, poliomyélite", "DTP-19-0082", "Hôpital Saint-Éloi",
    "Ostéosynthèse du poignet", "Clinique des Jonquilles", "Appendicectomie",
    "Diabète de type 2", "grand-père paternel", "Infarctus du myocarde", "61 ans",
)
# The latest value of each kind of measure (older values are not in the synthesis).
EXPECTED_MEASURES = (
    "72,5 kg", "168 cm", "128/82 mmHg", "64 bpm", "0,94 g/L", "37,8 °C", "3/10", "97 %",
)


def bulk_measures(count: int, *, today: date = TODAY) -> list[dict[str, Any]]:
    """``count`` measures spread over the past years, a tenth of them blood pressures."""
    out: list[dict[str, Any]] = []
    for n in range(count):
        day = (today - timedelta(days=n * 3)).isoformat()
        if n % 10 == 0:
            out.append({"id": f"m{n}", "added_by": None, "added_at": day, "kind": "tension",
                        "systolic": 110 + n % 40, "diastolic": 70 + n % 20, "unit": "mmHg",
                        "date": day})
        else:
            out.append({"id": f"m{n}", "added_by": None, "added_at": day, "kind": "poids",
                        "value": 60 + (n % 200) / 10, "unit": "kg", "date": day})
    return out
