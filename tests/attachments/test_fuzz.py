"""Property tests: no exception escapes the readers, whatever the bytes."""

from __future__ import annotations

import os
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attachments import Label, Limits, Refusal, analyse, classify, extract, parse_cda, read_xdm
from attachments.cda import CdaHeader
from attachments.ebrim import parse_metadata
from attachments.mime import sanitise_filename
from attachments.model import author_from_xcn, parse_cx, parse_hl7_time
from tests.attachments.corpus import (
    Attachment,
    XdmDoc,
    make_cda,
    make_message,
    make_metadata,
    make_pdf,
    make_xdm,
    make_zip,
)

# ATTACHMENTS_FUZZ_EXAMPLES raises the budget for a longer local fuzzing session.
_EXAMPLES = int(os.environ.get("ATTACHMENTS_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = Limits(max_pdf_pages=1, pdf_time_budget=0.5)

_CDA = make_cda()
_METADATA = make_metadata([XdmDoc(_CDA)])
_XDM = make_xdm([XdmDoc(_CDA)])
_XDM_STORED = make_zip(
    [("IHE_XDM/SUBSET01/METADATA.XML", _METADATA), ("IHE_XDM/SUBSET01/DOC0001.XML", _CDA)],
    compression=zipfile.ZIP_STORED,
)
_MESSAGE = make_message(
    [
        Attachment(_XDM, "IHE_XDM.ZIP", "application", "zip"),
        Attachment(make_pdf("Ordonnance"), "ordo.pdf", "application", "pdf"),
        Attachment(_CDA, "doc.xml", "text", "xml", cte="quoted-printable"),
    ],
    subject="XDM/1.0/DDM+Ordonnance",
    headers={"X-MSS-CODECDA": "11488-4", "X-MSS-INS": "O"},
).as_bytes()


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with a few byte edits, an optional cut and an optional duplicated slice."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data) - 1))
        end = draw(st.integers(start, min(len(data), start + 200)))
        at = draw(st.integers(0, len(data)))
        data[at:at] = data[start:end]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_extract_random_bytes(raw: bytes) -> None:
    result = extract(raw)
    assert result.refusal is None or result.refusal.text
    for part in result.parts:
        assert "/" not in part.filename and part.filename


@FUZZ
@given(mutated(_MESSAGE))
def test_extract_mutated_message(raw: bytes) -> None:
    result = extract(raw)
    assert sum(p.size for p in result.parts) <= Limits().max_total_decoded


@settings(
    max_examples=max(60, _EXAMPLES // 3),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated(_MESSAGE))
def test_analyse_mutated_message(raw: bytes) -> None:
    for doc in analyse(raw, SMALL):
        assert isinstance(doc.label, Label)
        assert 0.0 <= doc.confidence <= 1.0


@FUZZ
@given(st.one_of(st.binary(max_size=1024), mutated(_XDM), mutated(_XDM_STORED)))
def test_read_xdm_never_raises(data: bytes) -> None:
    result = read_xdm(data)
    assert (result.refusal is None) or result.documents == ()


@FUZZ
@given(mutated(_METADATA))
def test_xdm_with_mutated_metadata(metadata: bytes) -> None:
    result = read_xdm(make_xdm([XdmDoc(_CDA)], metadata=metadata))
    assert result.refusal is not None or all(d.entry is not None for d in result.documents)
    parsed = parse_metadata(metadata, Limits())
    assert isinstance(parsed, (list, Refusal))


@FUZZ
@given(st.one_of(st.binary(max_size=1024), mutated(_CDA), st.text(max_size=300).map(str.encode)))
def test_parse_cda_never_raises(data: bytes) -> None:
    assert isinstance(parse_cda(data), (CdaHeader, Refusal))


@FUZZ
@given(st.text(max_size=200))
def test_field_parsers_never_raise(value: str) -> None:
    parse_hl7_time(value)
    parse_cx(value)
    author_from_xcn(value)
    name, _ = sanitise_filename(value, "application/pdf", "1")
    assert name and "/" not in name and "\\" not in name and "\x00" not in name


@FUZZ
@given(
    st.text(max_size=500),
    st.text(max_size=60),
    st.text(max_size=80),
    st.one_of(st.none(), st.text(max_size=10)),
    st.one_of(st.none(), st.text(max_size=3)),
)
def test_classify_total(
    text: str, filename: str, subject: str, type_code: str | None, class_code: str | None
) -> None:
    result = classify(
        text=text, filename=filename, subject=subject, type_code=type_code, class_code=class_code
    )
    assert 0.0 <= result.confidence <= 1.0
    assert result.needs_review == (
        result.label is Label.AUTR_DOC
        and result.confidence < 0.5
        and result.source.value == "content"
    )
