"""CDA R2 header reading and safe XML parsing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from attachments import Limits, Reason, Refusal, parse_cda
from attachments.cda import CdaHeader, is_cda
from attachments.model import parse_cx, parse_hl7_time
from tests.attachments.corpus import INS, INS_OID_TEST, RPPS, billion_laughs, make_cda, xxe


def _header(data: bytes) -> CdaHeader:
    result = parse_cda(data)
    assert isinstance(result, CdaHeader), result
    return result


def test_header_fields() -> None:
    h = _header(make_cda("11488-4", title="CR de consultation", confidentiality="R"))
    assert h.code is not None
    assert (h.code.code, h.code.system) == ("11488-4", "2.16.840.1.113883.6.1")
    assert h.title == "CR de consultation"
    assert h.confidentiality == "R"
    assert h.patient_ins is not None
    assert (h.patient_ins.value, h.patient_ins.oid) == (INS, INS_OID_TEST)
    assert len(h.patient_ids) == 2  # the local IPP is kept but is not the INS
    assert h.effective_time == datetime(2025, 1, 15, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert h.author is not None
    assert h.author.rpps == RPPS and h.author.national_id == "8" + RPPS
    assert (h.author.given_name, h.author.family_name) == ("Émile", "MARTIN")
    assert h.author.name == "Émile MARTIN"
    assert h.author.specialty is not None and h.author.specialty.code == "G15_10/SM26"
    assert h.author.institution == "Cabinet Martin"
    assert h.set_id == "1.2.250.1.999.2^SET-1"
    assert h.version == 2
    assert h.document_id == "1.2.250.1.999.1^DOC-42"
    assert h.language == "fr-FR"


@pytest.mark.parametrize(
    "oid",
    ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"],
    ids=["ins-nir", "ins-nia", "ins-test", "ins-demo"],
)
def test_every_ins_oid_accepted(oid: str) -> None:
    h = _header(make_cda(ins_oid=oid))
    assert h.patient_ins is not None and h.patient_ins.oid == oid


def test_non_ins_oid_gives_no_ins() -> None:
    h = _header(make_cda(ins_oid="1.2.250.1.999.77"))
    assert h.patient_ins is None


def test_adeli_author_has_no_rpps() -> None:
    h = _header(make_cda().replace(f'extension="8{RPPS}"'.encode(), b'extension="0123456789"'))
    assert h.author is not None and h.author.rpps is None
    assert h.author.national_id == "0123456789"


def test_naive_time_is_paris_local() -> None:
    h = _header(make_cda(effective="20250715103000"))
    assert h.effective_time is not None
    assert h.effective_time.utcoffset() == timedelta(hours=2)  # CEST in July


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (xxe(), Reason.XML_FORBIDDEN),
        (billion_laughs(), Reason.XML_FORBIDDEN),
        (b'<!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x/>', Reason.XML_FORBIDDEN),
        (b"<ClinicalDocument xmlns='urn:hl7-org:v3'>", Reason.XML_MALFORMED),
        (b"<ClinicalDocument/>", Reason.NOT_CDA),
        (b"<x:ClinicalDocument xmlns:x='urn:other'/>", Reason.NOT_CDA),
        (b"\xff\xfe\x00garbage", Reason.XML_MALFORMED),
    ],
    ids=[
        "xxe",
        "billion-laughs",
        "external-dtd",
        "truncated",
        "no-namespace",
        "wrong-namespace",
        "binary",
    ],
)
def test_unsafe_or_invalid_xml_refused(data: bytes, reason: Reason) -> None:
    result = parse_cda(data)
    assert isinstance(result, Refusal) and result.reason is reason


def test_size_limit() -> None:
    result = parse_cda(make_cda(), Limits(max_xml_bytes=64))
    assert isinstance(result, Refusal) and result.reason is Reason.XML_TOO_LARGE


def test_is_cda_sniff() -> None:
    assert is_cda(make_cda())
    assert not is_cda(b"%PDF-1.4")
    assert not is_cda(b"<html>ClinicalDocument</html>")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025", datetime(2025, 1, 1, tzinfo=timezone.utc)),
        ("20250115", datetime(2025, 1, 15, tzinfo=timezone.utc)),
        (
            "20250115103045.123-0500",
            datetime(2025, 1, 15, 10, 30, 45, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("20251340", None),
        ("hier", None),
        ("", None),
    ],
    ids=["year", "day", "offset-fraction", "out-of-range", "text", "empty"],
)
def test_hl7_time(value: str, expected: datetime | None) -> None:
    assert parse_hl7_time(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{INS}^^^&1.2.250.1.213.1.4.8&ISO^NH", (INS, "1.2.250.1.213.1.4.8")),
        (f"{INS}^^^&1.2.250.1.213.1.4.10&ISO^NH", (INS, "1.2.250.1.213.1.4.10")),
        (f"{INS}^^^^NH", None),
        ("^^^&1.2.250.1.213.1.4.8&ISO", None),
        ("", None),
    ],
    ids=["ins-nir", "ins-test", "no-authority", "no-id", "empty"],
)
def test_parse_cx(value: str, expected: tuple[str, str] | None) -> None:
    pid = parse_cx(value)
    assert (None if pid is None else (pid.value, pid.oid)) == expected
