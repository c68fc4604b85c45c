"""Value types shared by the XDM and CDA readers, and the HL7 v2/v3 field parsers they use.

Identifier facts (domain README section 1): INS OIDs 1.2.250.1.213.1.4.8 (INS-NIR), .9 (INS-NIA),
.10 (INS-NIR test), .11 (demo); national professional id OID 1.2.250.1.71.4.2.1 with value
"8"+RPPS (or "0"+ADELI); structure id OID 1.2.250.1.71.4.2.2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

__all__ = [
    "INS_OIDS",
    "OID_IDNAT_PS",
    "OID_IDNAT_STRUCT",
    "OID_LOINC",
    "Author",
    "Code",
    "PatientId",
    "author_from_xcn",
    "code_from_ce",
    "institution_from_xon",
    "parse_cx",
    "parse_hl7_time",
    "rpps_from_national_id",
]

INS_OIDS = frozenset(
    {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"}
)
OID_IDNAT_PS = "1.2.250.1.71.4.2.1"
OID_IDNAT_STRUCT = "1.2.250.1.71.4.2.2"
OID_LOINC = "2.16.840.1.113883.6.1"

_TS = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,6})?(?:([+-])(\d{2})(\d{2}))?$"
)


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: code, coding system (OID or name) and display name."""

    code: str
    system: str | None = None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class PatientId:
    """A patient identifier; `is_ins` when the OID is one of the INS OIDs."""

    value: str
    oid: str

    @property
    def is_ins(self) -> bool:
        """True for INS-NIR, INS-NIA, and the test/demo INS OIDs."""
        return self.oid in INS_OIDS


@dataclass(frozen=True, slots=True)
class Author:
    """Author of a document: person (with RPPS when national id), institution, role, specialty."""

    rpps: str | None = None
    """11-digit RPPS (national id "8"+RPPS under OID 1.2.250.1.71.4.2.1)."""
    national_id: str | None = None
    """Raw national id (e.g. "8"+RPPS or "0"+ADELI) when the OID is idNat_PS."""
    family_name: str | None = None
    given_name: str | None = None
    institution: str | None = None
    institution_id: str | None = None
    role: Code | None = None
    """Profession or role (e.g. TRE_G15 profession code)."""
    specialty: Code | None = None

    @property
    def name(self) -> str:
        """Display name, "Given FAMILY" or whatever part is known."""
        return " ".join(p for p in (self.given_name, self.family_name) if p)


def parse_hl7_time(value: str | None, default_tz: tzinfo = timezone.utc) -> datetime | None:
    """Parse an HL7 TS / DTM value ("YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]") into a datetime.

    Missing parts default to the start of the period. Values without an offset take `default_tz`
    (IHE ITI TF-3 4.2.3.1.2 says XDS times are UTC). Returns None when unparsable.
    """
    if not value:
        return None
    m = _TS.match(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, sign, oh, om = m.groups()
    try:
        tz: tzinfo = default_tz
        if sign:
            offset = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
    except ValueError:  # out-of-range component or offset
        return None


def _components(value: str, sep: str = "^") -> list[str]:
    return [c.strip() for c in value.split(sep)]


def _at(items: list[str], index: int) -> str | None:
    return (items[index] or None) if index < len(items) else None


def parse_cx(value: str | None) -> PatientId | None:
    """Parse an HL7 v2 CX such as ``<INS>^^^&1.2.250.1.213.1.4.8&ISO^NH``.

    Returns the id and the assigning authority's universal id (CX.4.2); None if either is missing.
    """
    if not value:
        return None
    comps = _components(value)
    ident = _at(comps, 0)
    authority = _at(comps, 3)
    if not ident or not authority:
        return None
    sub = authority.split("&")
    oid = sub[1].strip() if len(sub) > 1 else ""
    if not oid:
        return None
    return PatientId(value=ident, oid=oid)


def code_from_ce(value: str | None) -> Code | None:
    """Parse a CE-like ``code^display^system`` (authorRole/authorSpecialty in French XDM)."""
    if not value:
        return None
    comps = _components(value)
    code = _at(comps, 0)
    if not code:
        return None
    system = _at(comps, 2)
    if system and "&" in system:  # CWE-style "&OID&ISO"
        system = next((s for s in system.split("&") if s), None)
    return Code(code=code, display=_at(comps, 1), system=system)


def rpps_from_national_id(national_id: str | None) -> str | None:
    """RPPS from a national professional id "8"+11 digits; None otherwise (e.g. ADELI "0"+9)."""
    if national_id and len(national_id) == 12 and national_id.startswith("8"):
        if national_id.isascii() and national_id.isdigit():
            return national_id[1:]
    return None


def author_from_xcn(value: str | None) -> Author:
    """Parse an XCN authorPerson.

    Example: ``810001234567^NOM^Prénom^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS``.

    The id is only read as a national id (and an RPPS) when the assigning authority (XCN.9) is
    1.2.250.1.71.4.2.1.
    """
    if not value:
        return Author()
    comps = _components(value)
    ident = _at(comps, 0)
    authority = _at(comps, 8) or ""
    sub = authority.split("&")
    oid = sub[1].strip() if len(sub) > 1 else ""
    national = ident if oid == OID_IDNAT_PS else None
    return Author(
        rpps=rpps_from_national_id(national),
        national_id=national,
        family_name=_at(comps, 1),
        given_name=_at(comps, 2),
    )


def institution_from_xon(value: str | None) -> tuple[str | None, str | None]:
    """Name and identifier (XON.10, or XON.3) of an authorInstitution XON."""
    if not value:
        return None, None
    comps = _components(value)
    return _at(comps, 0), _at(comps, 9) or _at(comps, 2)
