"""Distinguished-name parsing and matching for operator certificates.

Theory of operation
-------------------
The national whitelist lists, per operator domain, the subject DN of the
operator's server certificate as a string, e.g.::

    CN=mail.example.fr,OU=1234567890,O=Hopital,ST=Rhone (69),C=FR

A receiving server compares the subject of the peer's client certificate
(a :class:`cryptography.x509.Name`) with those strings. String forms in the
wild are not strictly RFC 4514: the real 2025 file holds RFC 1779-style quoted
values (``O="C H U  DE  LIMOGES"``) and bare quotes inside a value
(``O=CRLCC "PAUL STRAUSS"``). Both sides are therefore reduced to a canonical
:class:`DistinguishedName`:

* attribute types are mapped to their OID (``cn``, ``commonName``,
  ``2.5.4.3`` all become ``2.5.4.3``), RFC 4514 section 3;
* values are unescaped (RFC 4514 section 2.4), one pair of wrapping double
  quotes is removed (RFC 1779 section 2.3), insignificant spaces are removed
  and inner runs of spaces collapsed, and the value is case-folded, as the
  caseIgnoreMatch rule of RFC 4517 section 4.2.11 with the string preparation
  of RFC 4518 section 2.6.1 would do;
* attribute order is ignored: the DN is the sorted multiset of its
  (type, value) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

__all__ = [
    "DistinguishedName",
    "any_dn_matches",
    "DnParseError",
    "dn_from_name",
    "dn_matches",
    "parse_dn",
]

#: RFC 4514 section 3 short names and common long/legacy aliases -> OID.
_TYPE_ALIASES: dict[str, str] = {
    "cn": "2.5.4.3",
    "commonname": "2.5.4.3",
    "sn": "2.5.4.4",
    "surname": "2.5.4.4",
    "serialnumber": "2.5.4.5",
    "c": "2.5.4.6",
    "countryname": "2.5.4.6",
    "l": "2.5.4.7",
    "localityname": "2.5.4.7",
    "st": "2.5.4.8",
    "s": "2.5.4.8",
    "stateorprovincename": "2.5.4.8",
    "street": "2.5.4.9",
    "streetaddress": "2.5.4.9",
    "o": "2.5.4.10",
    "organizationname": "2.5.4.10",
    "ou": "2.5.4.11",
    "organizationalunitname": "2.5.4.11",
    "title": "2.5.4.12",
    "givenname": "2.5.4.42",
    "gn": "2.5.4.42",
    "organizationidentifier": "2.5.4.97",
    "dc": "0.9.2342.19200300.100.1.25",
    "domaincomponent": "0.9.2342.19200300.100.1.25",
    "uid": "0.9.2342.19200300.100.1.1",
    "userid": "0.9.2342.19200300.100.1.1",
    "e": "1.2.840.113549.1.9.1",
    "email": "1.2.840.113549.1.9.1",
    "emailaddress": "1.2.840.113549.1.9.1",
}

_OID_RE = re.compile(r"^(?:oid\.)?([0-2](?:\.\d+)+)$", re.IGNORECASE)
_KEYWORD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_HEX_PAIR_RE = re.compile(r"[0-9A-Fa-f]{2}")
_SPACES_RE = re.compile(r"\s+")

# A hard cap keeps a hostile string from costing much (real DNs are < 200 chars).
_MAX_DN_LENGTH = 4096


class DnParseError(ValueError):
    """A DN string that cannot be parsed (RFC 4514 syntax, leniently read)."""


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    """A DN reduced to a canonical, order-independent form.

    Attributes:
        attributes: sorted ``(oid, normalised value)`` pairs; duplicates kept.
    """

    attributes: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return ",".join(f"{oid}={value}" for oid, value in self.attributes)


def _canonical_type(raw: str) -> str:
    name = raw.strip()
    match = _OID_RE.match(name)
    if match:
        return match.group(1)
    if not _KEYWORD_RE.match(name):
        raise DnParseError("invalid attribute type")
    alias = _TYPE_ALIASES.get(name.lower())
    if alias is None:
        # Unknown keyword: keep it case-insensitively comparable.
        return name.lower()
    return alias


def _normalise_value(value: str) -> str:
    """Apply the caseIgnoreMatch preparation (RFC 4518 2.6.1) plus quote removal."""
    text = value.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        # RFC 1779 2.3 quoted value; RFC 4514 dropped the form but files keep it.
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return _SPACES_RE.sub(" ", text).strip().casefold()


def _unescape(raw: str) -> str:
    """Decode RFC 4514 2.4 escapes (``\\,`` and ``\\C3\\A9`` hex pairs)."""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            if i + 1 >= len(raw):
                raise DnParseError("dangling escape")
            pair = raw[i + 1 : i + 3]
            if len(pair) == 2 and _HEX_PAIR_RE.fullmatch(pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(raw[i + 1].encode("utf-8"))
            i += 2
            continue
        out.extend(ch.encode("utf-8"))
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DnParseError("escaped bytes are not UTF-8") from exc


def _split(text: str, separators: str, *, quotes: bool = True) -> list[str]:
    """Split on unescaped separators (outside double quotes when ``quotes``)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == '"' and quotes:
            quoted = not quoted
        elif ch in separators and not quoted:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if quoted:
        # An odd number of quotes (``O=CRLCC "PAUL``): reread without quote
        # handling rather than reject a DN the national file may carry.
        return _split(text, separators, quotes=False)
    parts.append("".join(current))
    return parts


def _strip_unescaped(raw: str) -> str:
    """Strip surrounding spaces but keep an escaped trailing one (``a\\ ``, RFC 4514 2.4)."""
    value = raw.lstrip()
    while value and value[-1].isspace():
        backslashes = len(value) - 1 - len(value[:-1].rstrip("\\"))
        if backslashes % 2:
            break
        value = value[:-1]
    return value


def parse_dn(text: str) -> DistinguishedName:
    """Parse a DN string leniently into its canonical form.

    Accepts RFC 4514 strings, ``;`` as an RDN separator (RFC 2253 4), quoted
    values (RFC 1779) and multi-valued RDNs joined with ``+``.

    Args:
        text: the DN string, e.g. ``CN=mx.example.fr,O=Example,C=FR``.

    Returns:
        The canonical :class:`DistinguishedName`.

    Raises:
        DnParseError: empty string, missing ``=``, bad attribute type or escape.
    """
    if len(text) > _MAX_DN_LENGTH:
        raise DnParseError("DN too long")
    if not text.strip():
        raise DnParseError("empty DN")
    pairs: list[tuple[str, str]] = []
    for rdn in _split(text, ",;"):
        for ava in _split(rdn, "+"):
            if not ava.strip():
                raise DnParseError("empty RDN")
            type_part, sep, value_part = ava.partition("=")
            if not sep:
                raise DnParseError("attribute without '='")
            oid = _canonical_type(type_part)
            value = _strip_unescaped(value_part)
            if value.startswith("#"):
                # RFC 4514 2.4 hexstring: BER kept verbatim, compared as hex.
                pairs.append((oid, value.lower()))
                continue
            pairs.append((oid, _normalise_value(_unescape(value))))
    return DistinguishedName(tuple(sorted(pairs)))


def dn_from_name(name: x509.Name) -> DistinguishedName:
    """Reduce a certificate subject or issuer to the canonical form.

    Args:
        name: a parsed X.509 name (``cert.subject``).

    Returns:
        The canonical :class:`DistinguishedName`.
    """
    pairs: list[tuple[str, str]] = []
    for attribute in name:
        raw = attribute.value
        if isinstance(raw, bytes):
            value = "#" + raw.hex()
        else:
            value = _normalise_value(raw)
        pairs.append((attribute.oid.dotted_string, value))
    return DistinguishedName(tuple(sorted(pairs)))


def dn_matches(listed: str | DistinguishedName, subject: x509.Name) -> bool:
    """Tell whether a listed DN designates the given certificate subject.

    Args:
        listed: a DN string (as in the whitelist) or an already parsed DN.
        subject: the certificate's subject name.

    Returns:
        True if both reduce to the same canonical DN; False otherwise,
        including when ``listed`` cannot be parsed.
    """
    try:
        wanted = listed if isinstance(listed, DistinguishedName) else parse_dn(listed)
    except DnParseError:
        return False
    return wanted == dn_from_name(subject)


def any_dn_matches(listed: Iterable[str | DistinguishedName], subject: x509.Name) -> bool:
    """Tell whether one of several listed DNs designates ``subject``."""
    actual = dn_from_name(subject)
    for item in listed:
        try:
            wanted = item if isinstance(item, DistinguishedName) else parse_dn(item)
        except DnParseError:
            continue
        if wanted == actual:
            return True
    return False
