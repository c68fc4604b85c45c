"""The campaign file's rows, as a table: each row accepted (what it becomes) or refused (why)."""

from datetime import date

import pytest

from mailserver.directory.campaign import Patient, Refused, parse_row, read_patients
from mailserver.errors import ValidationError

TODAY = date(2025, 4, 1)
INS_F79 = "279035121518989"  # woman born in March 1979
INS_M85 = "185127510812395"  # man born in December 1985
INS_99 = "192997512345670"  # man born in 1992, month unknown (99)

BASE = {"ins": INS_F79, "nom": "Dupont", "prenoms": "Marie Anne", "date_naissance": "1979-03-12",
        "adresse_1": "12 rue des Lilas", "adresse_2": "", "adresse_3": "",
        "code_postal": "75011", "commune": "Paris", "email": ""}
NO_POSTAL = {"adresse_1": "", "code_postal": "", "commune": ""}

ACCEPTED: list[tuple[str, dict[str, str], Patient]] = [
    ("postal only", {}, Patient(INS_F79, "DUPONT", "Marie Anne", date(1979, 3, 12),
                                ("12 rue des Lilas", "75011 PARIS"), None)),
    ("email only, French date", {**NO_POSTAL, "ins": INS_M85, "date_naissance": "15/12/1985",
                                 "email": "j.martin@example.org"},
     Patient(INS_M85, "DUPONT", "Marie Anne", date(1985, 12, 15), (), "j.martin@example.org")),
    ("both, extra lines and spaces", {"adresse_2": " Bât.  B ", "adresse_3": "",
                                      "email": "m@example.org", "nom": " de  la Tour "},
     Patient(INS_F79, "DE LA TOUR", "Marie Anne", date(1979, 3, 12),
             ("12 rue des Lilas", "Bât. B", "75011 PARIS"), "m@example.org")),
    ("INS with unknown month: year only", {"ins": INS_99, "date_naissance": "1992-07-01"},
     Patient(INS_99, "DUPONT", "Marie Anne", date(1992, 7, 1),
             ("12 rue des Lilas", "75011 PARIS"), None)),
    ("Corsican postal code", {"code_postal": "2A004", "commune": "Ajaccio"},
     Patient(INS_F79, "DUPONT", "Marie Anne", date(1979, 3, 12),
             ("12 rue des Lilas", "2A004 AJACCIO"), None)),
]

REFUSED: list[tuple[str, dict[str, str], str]] = [
    ("bad INS key", {"ins": INS_F79[:-1] + "0"}, "bad INS: INS key does not match"),
    ("INS too short", {"ins": "27903512151"}, "bad INS: INS must be 15 characters"),
    ("no INS", {"ins": ""}, "bad INS"),
    ("missing family name", {"nom": "  "}, "missing family name"),
    ("missing given names", {"prenoms": ""}, "missing given names"),
    ("missing birth date", {"date_naissance": ""}, "missing birth date"),
    ("bad birth date", {"date_naissance": "1979-02-30"}, "bad birth date"),
    ("bad birth date format", {"date_naissance": "12/03/79"}, "bad birth date"),
    ("birth date in the future", {"ins": INS_99, "date_naissance": "2092-01-01"},
     "in the future"),
    ("birth year disagrees with INS", {"date_naissance": "1980-03-12"},
     "does not agree with the INS"),
    ("birth month disagrees with INS", {"date_naissance": "1979-04-12"},
     "does not agree with the INS"),
    ("neither address nor email", {**NO_POSTAL}, "neither a postal address nor an email"),
    ("address without town", {"commune": ""}, "incomplete postal address"),
    ("town without street", {"adresse_1": ""}, "incomplete postal address"),
    ("bad postal code", {"code_postal": "7501"}, "bad postal code"),
    ("bad email", {"email": "not-an-address"}, "bad email address"),
]


@pytest.mark.parametrize(("case", "changes", "expected"), ACCEPTED,
                         ids=[c[0] for c in ACCEPTED])
def test_accepted_rows(case: str, changes: dict[str, str], expected: Patient) -> None:
    assert parse_row({**BASE, **changes}, today=TODAY) == expected


@pytest.mark.parametrize(("case", "changes", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_rows(case: str, changes: dict[str, str], reason: str) -> None:
    result = parse_row({**BASE, **changes}, today=TODAY)
    assert isinstance(result, Refused), result
    assert reason in result.reason


def test_file_line_numbers_separator_and_header() -> None:
    text = ("\ufeffINS,Nom,Prenoms,Date_Naissance,Email,Remarque\n"
            f"{INS_F79},Dupont,Marie,1979-03-12,m@example.org,ignored\n"
            "\n"
            f'{INS_M85},"Martin,\nJean",Jean,1985-12-15,j@example.org,\n'
            f"{INS_M85[:-1]}0,Martin,Jean,1985-12-15,j@example.org,\n"
            f"{INS_M85},Martin,Jean,1985-12-15,j@example.org,x,extra\n")
    rows = list(read_patients(text.splitlines(keepends=True), today=TODAY))
    assert [n for n, _ in rows] == [2, 4, 6, 7]
    assert isinstance(rows[0][1], Patient) and rows[0][1].email == "m@example.org"
    assert isinstance(rows[1][1], Patient) and rows[1][1].family_name == "MARTIN, JEAN"
    assert isinstance(rows[2][1], Refused) and "INS key" in rows[2][1].reason
    assert isinstance(rows[3][1], Refused) and "fields" in rows[3][1].reason


@pytest.mark.parametrize("header", ["ins;nom;prenoms;email", "ins;nom;prenoms;date_naissance",
                                    ""])
def test_unusable_header_refuses_the_file(header: str) -> None:
    with pytest.raises(ValidationError):
        list(read_patients([header + "\n", f"{INS_F79};A;B;1979-03-12\n"], today=TODAY))
