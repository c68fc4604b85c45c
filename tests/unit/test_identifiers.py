import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.errors import IdentifierError
from mailserver.identifiers import (
    ins_key,
    luhn_valid,
    patient_address,
    validate_adeli,
    validate_ins,
    validate_rpps,
)


@pytest.mark.parametrize("rpps", ["10003244273", "99700218896", "10000000017"])
def test_valid_rpps(rpps: str) -> None:
    assert validate_rpps(rpps) == rpps


@pytest.mark.parametrize("rpps,why", [
    ("10003244274", "Luhn"),
    ("1000324427", "11 digits"),
    ("100032442733", "11 digits"),
    ("1000324427a", "11 digits"),
    ("", "11 digits"),
], ids=["bad-check-digit", "too-short", "too-long", "letter", "empty"])
def test_invalid_rpps(rpps: str, why: str) -> None:
    with pytest.raises(IdentifierError, match=why):
        validate_rpps(rpps)


def test_adeli() -> None:
    assert validate_adeli("123456789") == "123456789"
    with pytest.raises(IdentifierError):
        validate_adeli("12345678")


@pytest.mark.parametrize("ins", ["279035121518989", "185127510812395"])
def test_valid_ins(ins: str) -> None:
    assert validate_ins(ins) == ins


def test_ins_corsica_keys() -> None:
    # 2A counts as 19 and 2B as 18 when computing the key.
    nir_a = "184012A123456"
    nir_b = "184012B123456"
    key_a = 97 - int("1840119123456") % 97
    key_b = 97 - int("1840118123456") % 97
    assert ins_key(nir_a) == key_a
    assert ins_key(nir_b) == key_b
    assert validate_ins(f"{nir_a}{key_a:02d}") == f"{nir_a}{key_a:02d}"
    assert validate_ins(f"{nir_b}{key_b:02d}".lower()) == f"{nir_b}{key_b:02d}"


@pytest.mark.parametrize("ins,why", [
    ("279035121518988", "key does not match"),
    ("27903512151898", "15 characters"),
    ("979035121518989", "malformed"),
    ("2790351215189AB", "2 digits"),
    ("2791351215189" + "00", "month"),
], ids=["wrong-key", "short", "bad-sex-digit", "letters-in-key", "bad-month"])
def test_invalid_ins(ins: str, why: str) -> None:
    with pytest.raises(IdentifierError, match=why):
        validate_ins(ins)


def test_patient_address() -> None:
    assert patient_address("279035121518989", "patient.x.fr") == "279035121518989@patient.x.fr"


@given(st.text(max_size=30))
def test_identifier_validators_never_crash(value: str) -> None:
    for fn in (validate_rpps, validate_ins, validate_adeli):
        try:
            fn(value)
        except IdentifierError:
            pass


@given(st.integers(min_value=0, max_value=10**10 - 1))
def test_luhn_completion(n: int) -> None:
    base = f"{n:010d}"
    valid = [d for d in "0123456789" if luhn_valid(base + d)]
    assert len(valid) == 1


@pytest.mark.parametrize("ins,shown", [
    ("279035121518989", "2 79 03 51 215 189 89"),
    (" 1 85 12 75 108 123 95 ", "1 85 12 75 108 123 95"),
    ("185122a00412345", "1 85 12 2A 004 123 45"),
    ("12345", "12345"),
], ids=["plain", "already-grouped", "corsica-shape", "not-an-ins"])
def test_grouped_ins(ins: str, shown: str) -> None:
    from mailserver.identifiers import grouped_ins

    assert grouped_ins(ins) == shown


@pytest.mark.parametrize("ins,sex,born", [
    ("279035121518989", "F", (1979, 3)),
    ("185127510812395", "M", (1985, 12)),
    ("1 05 02 75 108 123 95", "M", (2005, 2)),
    ("299995121518989", "F", None),  # month unknown to the INS
    ("12345", None, None),
], ids=["woman-1979", "man-1985", "grouped-2005", "unknown-month", "not-an-ins"])
def test_ins_birth(ins: str, sex: str | None, born: tuple[int, int] | None) -> None:
    from mailserver.identifiers import ins_birth

    assert ins_birth(ins, 2026) == (sex, born)
