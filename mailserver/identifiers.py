"""National identifiers: RPPS, ADELI, INS (NIR) and the addresses derived from them.

Facts: ../shared/domain/README.md §1-2. Pure functions; errors are IdentifierError with a
message an administrator can act on.
"""

from __future__ import annotations

import re

from mailserver.errors import IdentifierError

__all__ = [
    "luhn_valid",
    "validate_rpps",
    "validate_adeli",
    "validate_ins",
    "ins_key",
    "patient_address",
    "normalise_address",
    "is_valid_address",
    "grouped_ins",
    "ins_birth",
]

_NIR = re.compile(r"^[1-478]\d{4}(?:\d{2}|2A|2B)\d{6}$")
_ADDR = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` passes the Luhn check (its last digit is the check digit)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def validate_rpps(value: str) -> str:
    """An RPPS number: 11 digits, the last a Luhn check digit on the first ten."""
    v = value.strip()
    if not (len(v) == 11 and v.isascii() and v.isdigit()):
        raise IdentifierError(f"RPPS must be 11 digits, got {len(v)} characters")
    if not luhn_valid(v):
        raise IdentifierError("RPPS check digit (Luhn) is wrong")
    return v


def validate_adeli(value: str) -> str:
    v = value.strip()
    if not (len(v) == 9 and v.isascii() and v.isdigit()):
        raise IdentifierError("ADELI must be 9 digits")
    return v


def ins_key(nir13: str) -> int:
    """The 2-digit key of a 13-character NIR: 97 - (number mod 97), with 2A→19, 2B→18."""
    number = nir13
    if nir13[5:7].upper() == "2B":
        number = nir13[:5] + "18" + nir13[7:]
    elif nir13[5:7].upper() == "2A":
        number = nir13[:5] + "19" + nir13[7:]
    return 97 - (int(number) % 97)


def validate_ins(value: str) -> str:
    """An INS (NIR matricule + key), 15 characters; returns it upper-cased."""
    v = value.strip().replace(" ", "").upper()
    if len(v) != 15:
        raise IdentifierError(f"INS must be 15 characters (13 + 2-digit key), got {len(v)}")
    nir, key = v[:13], v[13:]
    if not _NIR.match(nir):
        raise IdentifierError(
            "INS is malformed: expected sex digit, year, month, département (2A/2B for "
            "Corsica), commune and rank")
    month = int(nir[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        raise IdentifierError("INS birth month is out of range")
    if not key.isdigit():
        raise IdentifierError("INS key must be 2 digits")
    if int(key) != ins_key(nir):
        raise IdentifierError("INS key does not match (97 - number mod 97)")
    return v


def normalise_address(address: str) -> str:
    """Lower-case domain; local parts are compared case-insensitively too (our choice)."""
    return address.strip().strip("<>").lower()


def is_valid_address(address: str) -> bool:
    return bool(_ADDR.match(address)) and len(address) <= 254


def patient_address(ins: str, patient_domain: str) -> str:
    return f"{validate_ins(ins).lower()}@{patient_domain}"


def grouped_ins(ins: str) -> str:
    """An INS as printed on the carte Vitale: ``2 79 03 51 215 189 89``.

    Sex, year, month, département, commune, rank, key. A value that is not 15 characters
    long is returned as given (stripped): display code never refuses what the store holds.
    """
    v = ins.strip().replace(" ", "").upper()
    if len(v) != 15:
        return ins.strip()
    return " ".join((v[0], v[1:3], v[3:5], v[5:7], v[7:10], v[10:13], v[13:15]))


def ins_birth(ins: str, this_year: int) -> tuple[str | None, tuple[int, int] | None]:
    """What an INS tells of its holder: sex (``M``/``F``) and (year, month) of birth.

    The year has two digits: the latest year not after ``this_year`` is taken. A month the
    INS does not know (20-42, 50-99) gives None; so does anything that is not an INS.
    """
    v = ins.strip().replace(" ", "").upper()
    if len(v) != 15 or not _NIR.match(v[:13]):
        return None, None
    sex = "M" if v[0] in "137" else "F"
    yy, month = int(v[1:3]), int(v[3:5])
    year = 2000 + yy if 2000 + yy <= this_year else 1900 + yy
    return sex, ((year, month) if 1 <= month <= 12 else None)
