"""The announcement campaign: patients read from a CSV file become pending accounts.

Two halves:

* :func:`read_patients` and :func:`parse_row` are pure: text in, one :class:`Patient` or one
  :class:`Refused` (with the reason) per data row, tagged with the row's line number in the file.
* :func:`run_campaign` applies the accepted rows through the :class:`Directory`: a pending
  account per patient (provisional code hashed in the directory, deadline 6 weeks after the
  notification day), or nothing for a patient whose INS already has an account (a rerun of the
  same file creates nothing and issues no code). The codes it returns exist only in memory: the
  caller puts them in the letters (or the email of a patient without a postal address).

The file (UTF-8, a BOM accepted; ``;`` or ``,`` separated, detected from the header line) has a
header line naming its columns, in any order, case-insensitive; unknown columns are ignored::

    ins;nom;prenoms;date_naissance;adresse_1;adresse_2;adresse_3;code_postal;commune;email

``date_naissance`` is ``YYYY-MM-DD`` or ``DD/MM/YYYY`` and must agree with the INS's year (and
month, when the INS has one). A postal address is ``adresse_1`` + ``code_postal`` (5 digits) +
``commune`` (``adresse_2``/``adresse_3`` optional); each patient needs a postal address, an
email, or both.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from mailserver.directory.service import AccountInfo, Directory
from mailserver.errors import AlreadyExists, IdentifierError, ValidationError
from mailserver.identifiers import is_valid_address, validate_ins
from mailserver.lifecycle import deadline_for

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "Patient", "Refused", "parse_row", "read_patients",
           "parse_birth_date", "Created", "Existing", "CampaignResult", "run_campaign"]

COLUMNS = ("ins", "nom", "prenoms", "date_naissance", "adresse_1", "adresse_2", "adresse_3",
           "code_postal", "commune", "email")
REQUIRED_COLUMNS = ("ins", "nom", "prenoms", "date_naissance")
_POSTCODE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_OLDEST = date(1880, 1, 1)


@dataclass(frozen=True)
class Patient:
    """An accepted row."""

    ins: str
    family_name: str
    given_names: str
    birth_date: date
    postal: tuple[str, ...]
    """The address lines under the name, ``"<code postal> <COMMUNE>"`` last; empty: none."""
    email: str | None

    @property
    def name(self) -> str:
        return f"{self.given_names} {self.family_name}"


@dataclass(frozen=True)
class Refused:
    """A refused row and why (English, for the operator)."""

    reason: str


def parse_birth_date(text: str) -> date:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY``; raises ``ValueError``."""
    text = text.strip()
    if "/" in text:
        day, month, year = text.split("/")
        if len(year) != 4:
            raise ValueError("the year must have 4 digits")
        return date(int(year), int(month), int(day))
    return date.fromisoformat(text)


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def parse_row(row: Mapping[str, str | None], *, today: date) -> Patient | Refused:
    """Check one row (keys: :data:`COLUMNS`, lower-case; missing keys read as empty)."""
    try:
        ins = validate_ins(row.get("ins") or "")
    except IdentifierError as exc:
        return Refused(f"bad INS: {exc}")
    family, given = _clean(row.get("nom")).upper(), _clean(row.get("prenoms"))
    if not family:
        return Refused("missing family name (nom)")
    if not given:
        return Refused("missing given names (prenoms)")
    raw_birth = _clean(row.get("date_naissance"))
    if not raw_birth:
        return Refused("missing birth date (date_naissance)")
    try:
        birth = parse_birth_date(raw_birth)
    except ValueError:
        return Refused(f"bad birth date {raw_birth!r} (YYYY-MM-DD or DD/MM/YYYY)")
    if not _OLDEST <= birth <= today:
        return Refused(f"bad birth date {raw_birth!r} (in the future or before 1880)")
    nir_month = int(ins[3:5])
    if int(ins[1:3]) != birth.year % 100 or (1 <= nir_month <= 12 and nir_month != birth.month):
        return Refused("the birth date does not agree with the INS (year and month)")
    lines = [_clean(row.get(k)) for k in ("adresse_1", "adresse_2", "adresse_3")]
    postcode, town = _clean(row.get("code_postal")).upper(), _clean(row.get("commune")).upper()
    postal: tuple[str, ...] = ()
    if any(lines) or postcode or town:
        if not lines[0] or not postcode or not town:
            return Refused("incomplete postal address (adresse_1, code_postal and commune "
                           "are needed)")
        if not _POSTCODE.match(postcode):
            return Refused(f"bad postal code {postcode!r} (5 digits)")
        postal = (*(line for line in lines if line), f"{postcode} {town}")
    email = _clean(row.get("email")) or None
    if email is not None and not is_valid_address(email):
        return Refused(f"bad email address {email!r}")
    if not postal and email is None:
        return Refused("neither a postal address nor an email")
    return Patient(ins, family, given, birth, postal, email)


def read_patients(lines: Iterable[str], *, today: date
                  ) -> Iterator[tuple[int, Patient | Refused]]:
    """Each data row of the file's text with its line number (the header is line 1).

    Raises:
        ValidationError: no header, or a required column is missing (nothing is read).
    """
    it = iter(lines)
    header_line = next(it, "").lstrip("\ufeff")
    delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
    header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter),
                                              [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValidationError(f"the header line lacks the column(s) {', '.join(missing)} "
                              f"(expected: {';'.join(COLUMNS)})")
    if not ({"adresse_1", "email"} & set(header)):
        raise ValidationError("the header line has neither adresse_1 nor email")
    reader = csv.reader(it, delimiter=delimiter)
    start = 2
    for values in reader:
        line_no, start = start, reader.line_num + 2  # the header was read apart
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            yield line_no, Refused(f"{len(values)} fields, the header has {len(header)}")
            continue
        yield line_no, parse_row(dict(zip(header, values, strict=False)), today=today)


@dataclass(frozen=True)
class Created:
    line: int
    patient: Patient
    account: AccountInfo
    code: str
    deadline: date


@dataclass(frozen=True)
class Existing:
    line: int
    address: str


@dataclass
class CampaignResult:
    created: list[Created] = field(default_factory=list)
    existing: list[Existing] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


async def run_campaign(directory: Directory, rows: Sequence[tuple[int, Patient | Refused]], *,
                       notified_on: date,
                       on_row: Callable[[int, Created | Existing | Refused], Awaitable[None]]
                       | None = None) -> CampaignResult:
    """Create a pending account for each accepted row whose INS has none; ``on_row`` is told
    each row's outcome as it is known (the progress bar, the emails)."""
    result = CampaignResult()
    deadline = deadline_for(notified_on)
    for line, row in rows:
        outcome: Created | Existing | Refused
        if isinstance(row, Refused):
            outcome = row
            result.refused.append((line, row.reason))
        elif (found := await directory.by_ins(row.ins)) is not None:
            outcome = Existing(line, found.address)
            result.existing.append(outcome)
        else:
            try:
                info, code = await directory.add_patient(
                    ins=row.ins, name=row.name, status="pending",
                    contact={"email": row.email} if row.email else None,
                    notified_on=notified_on)
            except AlreadyExists:  # created meanwhile (another run, or twice in the file)
                found = await directory.by_ins(row.ins)
                outcome = Existing(line, found.address if found else row.ins)
                result.existing.append(outcome)
            else:
                outcome = Created(line, row, info, code, deadline)
                result.created.append(outcome)
        if on_row is not None:
            await on_row(line, outcome)
    return result
