"""The national whitelist parser: sample, real published file, errors, diff, fuzz."""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.trust.whitelist import (
    NAMESPACE,
    Whitelist,
    WhitelistEntry,
    WhitelistError,
    diff,
    parse_whitelist,
)

DOMAIN_DIR = Path("/work/shared/domain")
SAMPLE = DOMAIN_DIR / "sample-liste-blanche.xml"
REAL = DOMAIN_DIR / "liste-blanche-2025-03-13.xml.gz"


def doc(*domaines: str, generated: str = "2026-11-20T06:00:00", ns: str = NAMESPACE) -> bytes:
    body = "".join(f"<Domaine>{d}</Domaine>" for d in domaines)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="{ns}">'
        f"<DateDeGeneration>{generated}</DateDeGeneration>"
        f"<ListeDomaines>{body}</ListeDomaines></ListeBlancheMSSante>"
    ).encode()


def dom(nom: str, dn: str = "CN=mx.example.fr,OU=1,O=X,ST=Paris (75),C=FR", extra: str = "") -> str:
    return f"<Nom>{nom}</Nom><DNCertificatOperateur>{dn}</DNCertificatOperateur>{extra}"


@pytest.mark.skipif(not SAMPLE.exists(), reason="shared sample absent")
def test_sample_file() -> None:
    wl = parse_whitelist(SAMPLE)
    assert wl.generated == datetime(2026, 11, 20, 6, 0)
    assert len(wl.entries) == 4
    assert wl.domains == {"medecin.example-mss.fr", "chu-exemple.example-mss.fr",
                          "patient.example-mss.fr"}
    # One entry per certificate: the first domain has two.
    assert len(wl.dns_for("medecin.example-mss.fr")) == 2
    first = wl.entries[0]
    assert first.description == "Messagerie des médecins (exemple)"
    assert first.support_contact == "support@operateur-a.example"
    assert first.updated == datetime(2026, 10, 1)
    assert not wl.unclosed_root


@pytest.mark.skipif(not REAL.exists(), reason="real whitelist file absent")
def test_real_published_file() -> None:
    wl = parse_whitelist(REAL)
    assert wl.generated == datetime(2025, 3, 13, 14, 54, 10, tzinfo=timezone.utc)
    # 6,554 Domaine elements; one holds an e-mail address as Nom and is rejected.
    assert len(wl.entries) + len(wl.rejected) == 6554
    assert [r.name for r in wl.rejected] == ["sessad@ase.ditepbeziers.mssante.fr"]
    assert len(wl.domains) == 5001
    assert len({e.certificate_dn for e in wl.entries}) == 392
    assert all(e.domain == e.domain.lower() for e in wl.entries)
    assert "uc-cmp.mssante.fr" in wl.domains  # published as UC-CMP.mssante.fr
    assert wl.unclosed_root  # the published file lacks </ListeBlancheMSSante>
    assert any("medimail-asip.mipih.fr" in dn for dn in wl.dns_for("adsea29.mssante.fr"))
    # Same result from a decompressed stream.
    raw = gzip.decompress(REAL.read_bytes())
    assert parse_whitelist(io.BytesIO(raw)).entries == wl.entries


def test_idna_and_case_normalisation_and_duplicates() -> None:
    wl = parse_whitelist(doc(dom("Hôpital.Example.FR."), dom("xn--hpital-ixa.example.fr",
                                                             "CN=other,C=FR")))
    assert wl.domains == {"xn--hpital-ixa.example.fr"}
    assert len(wl.entries_for("xn--hpital-ixa.example.fr")) == 2


def test_unknown_elements_and_foreign_namespace_tolerated() -> None:
    extra = "<Futur>x</Futur><z:Autre xmlns:z='urn:x'>y</z:Autre>"
    data = doc(dom("a.example.fr", extra=extra) + "<Nouveau/>")
    wl = parse_whitelist(data)
    assert [e.domain for e in wl.entries] == ["a.example.fr"]


def test_missing_optional_fields() -> None:
    wl = parse_whitelist(doc("<Nom>a.example.fr</Nom><DateMAJ>pas une date</DateMAJ>"))
    assert wl.entries == (WhitelistEntry(domain="a.example.fr"),)


def test_gzip_bytes_accepted() -> None:
    wl = parse_whitelist(gzip.compress(doc(dom("a.example.fr"))))
    assert wl.domains == {"a.example.fr"}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(doc("<Description>x</Description>"), id="missing-nom"),
        pytest.param(doc("<Nom>  </Nom>"), id="empty-nom"),
        pytest.param(b"<ListeBlancheMSSante><ListeDomaines><Domaine><Nom>a.fr", id="truncated"),
        pytest.param(doc(dom("a.fr"), ns="urn:other"), id="wrong-namespace"),
        pytest.param(b"<Autre/>", id="wrong-root"),
        pytest.param(b"", id="empty"),
        pytest.param(doc(dom("a.fr"), generated="hier"), id="bad-generation-date"),
        pytest.param(gzip.compress(doc(dom("a.fr")))[:-20], id="truncated-gzip"),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b"<ListeBlancheMSSante>&a;</ListeBlancheMSSante>",
            id="dtd-entities",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd">'
            b"<ListeBlancheMSSante/>",
            id="external-dtd",
        ),
    ],
)
def test_malformed_input_raises_whitelist_error(data: bytes) -> None:
    with pytest.raises(WhitelistError):
        parse_whitelist(data)


def test_missing_file_raises_whitelist_error(tmp_path: Path) -> None:
    with pytest.raises(WhitelistError):
        parse_whitelist(tmp_path / "absent.xml")


def test_cut_inside_list_is_not_tolerated() -> None:
    data = doc(dom("a.fr"), dom("b.fr")).replace(b"</ListeDomaines></ListeBlancheMSSante>", b"")
    with pytest.raises(WhitelistError):
        parse_whitelist(data)


def test_diff_reports_domains_and_dn_changes() -> None:
    dn1 = "CN=mx1.op.fr,OU=1,O=OP,ST=Paris (75),C=FR"
    dn1_respaced = "C=FR, ST=Paris (75), O=OP, OU=1, CN=mx1.op.fr"
    dn2 = "CN=mx2.op.fr,OU=1,O=OP,ST=Paris (75),C=FR"
    old = parse_whitelist(doc(dom("a.fr", dn1), dom("b.fr", dn1), dom("gone.fr", dn1)))
    new = parse_whitelist(doc(dom("a.fr", dn1_respaced), dom("b.fr", dn2), dom("new.fr", dn2)))
    d = diff(old, new)
    assert d.added_domains == {"new.fr"}
    assert d.removed_domains == {"gone.fr"}
    assert dict(d.dn_added) == {"b.fr": frozenset({dn2})}
    assert dict(d.dn_removed) == {"b.fr": frozenset({dn1})}
    assert not d.empty
    assert diff(new, new).empty


def test_whitelist_is_frozen() -> None:
    wl = Whitelist(generated=None, entries=(WhitelistEntry("a.fr"),))
    with pytest.raises(AttributeError):
        wl.entries = ()  # type: ignore[misc]
    assert wl.domains == {"a.fr"}


# --- fuzzing: only WhitelistError may escape -----------------------------------------

_tags = st.sampled_from(["Nom", "Description", "DNCertificatOperateur", "DateMAJ", "Domaine",
                         "ListeDomaines", "Autre", "DateDeGeneration"])
_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@st.composite
def xml_like(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        tag = draw(_tags)
        kind = draw(st.integers(0, 3))
        text = draw(_texts).replace("<", "&lt;") if kind else draw(_texts)
        parts.append(f"<{tag}>{text}</{tag}>" if kind != 3 else f"<{tag}>{text}")
    body = "".join(parts)
    return f'<ListeBlancheMSSante xmlns="{NAMESPACE}"><ListeDomaines>{body}'.encode() + (
        draw(st.sampled_from([b"</ListeDomaines></ListeBlancheMSSante>", b"</ListeDomaines>", b""]))
    )


def _only_documented(data: bytes) -> None:
    try:
        wl = parse_whitelist(data)
    except WhitelistError:
        return
    for entry in wl.entries:
        assert entry.domain == entry.domain.lower()


@settings(max_examples=150, deadline=None)
@given(xml_like())
def test_fuzz_structured(data: bytes) -> None:
    _only_documented(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes(data: bytes) -> None:
    _only_documented(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_gzip_wrapped(data: bytes) -> None:
    _only_documented(gzip.compress(data))


@pytest.mark.parametrize("encoding", ["UTF-9", "shift_jis", "x-none"])
def test_unknown_encoding_is_a_whitelist_error(encoding: str) -> None:
    # Found by tests/fuzz: the encoding's LookupError escaped the parser.
    data = doc(dom("a.fr")).replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())
    with pytest.raises(WhitelistError, match="encoding"):
        parse_whitelist(data)
