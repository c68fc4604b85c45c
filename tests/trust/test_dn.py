"""DN canonicalisation and matching against certificate subjects."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from mailserver.trust.dn import (
    DnParseError,
    any_dn_matches,
    dn_from_name,
    dn_matches,
    parse_dn,
)

from .certs import CertAuthority, name

SUBJECT = name("mail.example.fr", "1234567890", "Hopital", "Rhone (69)", "FR")


@pytest.mark.parametrize(
    "listed",
    [
        "CN=mail.example.fr,OU=1234567890,O=Hopital,ST=Rhone (69),C=FR",
        "C=FR,ST=Rhone (69),O=Hopital,OU=1234567890,CN=mail.example.fr",
        "cn=mail.example.fr, ou=1234567890, o=Hopital, st=Rhone (69), c=FR",
        "CN = mail.example.fr ,OU= 1234567890,O =Hopital,ST=Rhone  (69),C=fr",
        "commonName=MAIL.EXAMPLE.FR,organizationalUnitName=1234567890,"
        "organizationName=HOPITAL,stateOrProvinceName=Rhone (69),countryName=FR",
        "2.5.4.3=mail.example.fr,2.5.4.11=1234567890,2.5.4.10=Hopital,"
        "2.5.4.8=Rhone (69),2.5.4.6=FR",
        'CN=mail.example.fr,OU=1234567890,O="Hopital",ST="Rhone (69)",C=FR',
        "CN=mail.example.fr;OU=1234567890;O=Hopital;ST=Rhone (69);C=FR",
        "CN=mail.example.fr+OU=1234567890,O=Hopital,ST=Rhone \\28\\36\\39),C=FR",
        "CN=mail.example.fr\\ ,OU=1234567890,O=Hopital\\  ,ST=Rhone (69),C=FR",
    ],
    ids=["canonical", "reversed", "lower-types-spaces", "inner-spaces", "long-names",
         "oids", "quoted", "semicolons", "multivalued-and-hex-escapes", "escaped-trailing-space"],
)
def test_listed_variants_match(listed: str) -> None:
    assert dn_matches(listed, SUBJECT)


@pytest.mark.parametrize(
    "listed",
    [
        "CN=mail.example.fr,OU=1234567899,O=Hopital,ST=Rhone (69),C=FR",
        "CN=mail2.example.fr,OU=1234567890,O=Hopital,ST=Rhone (69),C=FR",
        "CN=mail.example.fr,OU=1234567890,O=Hopital,C=FR",
        "CN=mail.example.fr,OU=1234567890,O=Hopital,ST=Rhone (69),C=FR,L=Lyon",
        "CN=mail.example.fr,OU=1234567890,O=Hopital,L=Rhone (69),C=FR",
        "CN=mail.example.fr\\,OU=1234567890,O=Hopital,ST=Rhone (69),C=FR",
        "not a dn",
        "",
    ],
    ids=["other-ou", "other-cn", "missing-st", "extra-l", "st-vs-l", "escaped-comma",
         "garbage", "empty"],
)
def test_listed_variants_do_not_match(listed: str) -> None:
    assert not dn_matches(listed, SUBJECT)


def test_real_file_quirks_match_certificates() -> None:
    """Quoted and double-spaced values as published in the 2025 whitelist."""
    quoted = name("mss.ch-cadillac.fr", "1330781295", "C.H. DE  CADILLAC", "Gironde (33)")
    assert dn_matches(
        'CN=mss.ch-cadillac.fr,OU=1330781295,O="C.H. DE  CADILLAC",ST=Gironde (33),C=FR', quoted
    )
    inner = name("mss.strasbourg.unicancer.fr", "1670000033", 'CRLCC "PAUL STRAUSS"',
                 "Bas-Rhin (67)")
    assert dn_matches(
        'CN=mss.strasbourg.unicancer.fr,OU=1670000033,O=CRLCC "PAUL STRAUSS",'
        "ST=Bas-Rhin (67),C=FR",
        inner,
    )


def test_utf8_value_and_escape_forms_are_equal() -> None:
    subject = name("mx.example.fr", st="Pyrénées-Atlantiques (64)")
    assert dn_matches("CN=mx.example.fr,OU=1234567890,O=Hopital,"
                      "ST=Pyrénées-Atlantiques (64),C=FR", subject)
    assert dn_matches("CN=mx.example.fr,OU=1234567890,O=Hopital,"
                      "ST=Pyr\\C3\\A9n\\C3\\A9es-Atlantiques (64),C=FR", subject)


def test_matches_cryptography_rfc4514_rendering() -> None:
    ca = CertAuthority("dn")
    leaf = ca.issue(name("a.example.fr", o="Clinique, du Parc", st="Paris (75)"))
    rendered = leaf.cert.subject.rfc4514_string()
    assert "\\," in rendered
    assert dn_matches(rendered, leaf.cert.subject)
    assert any_dn_matches(["garbage", rendered], leaf.cert.subject)
    assert not any_dn_matches(["garbage", rendered.replace("Parc", "Bois")], leaf.cert.subject)


@pytest.mark.parametrize(
    "text", ["CN", "=x", "CN=a,,O=b", "1bad=x", "CN=a\\", "CN=\\ff\\fe"],
    ids=["no-equals", "empty-type", "empty-rdn", "bad-type", "dangling-escape", "bad-utf8"],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(DnParseError):
        parse_dn(text)


@given(st.text(max_size=200))
def test_parse_dn_fuzz_only_documented_error(text: str) -> None:
    try:
        parsed = parse_dn(text)
    except DnParseError:
        return
    assert parsed == parse_dn(text)


_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=16
).filter(lambda v: v.strip() != "")


@given(cn=_value, o=_value)
def test_rfc4514_round_trip_property(cn: str, o: str) -> None:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
         x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    assert parse_dn(subject.rfc4514_string()) == dn_from_name(subject)
