"""IHE XDM: metadata parsing, hash/size checks, hostile archives."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import datetime, timezone

import pytest

from attachments import Limits, Reason, read_xdm
from attachments.ebrim import parse_metadata
from attachments.xdm import looks_like_xdm
from tests.attachments.corpus import (
    INS,
    INS_OID_NIR,
    INS_OID_TEST,
    RPPS,
    XdmDoc,
    billion_laughs,
    make_cda,
    make_metadata,
    make_pdf,
    make_xdm,
    make_zip,
    xxe,
)


def test_reads_every_document_entry_field() -> None:
    cda = make_cda("11502-2")
    pdf = make_pdf("Résultats")
    archive = make_xdm(
        [
            XdmDoc(cda, "DOC0001.XML", "11502-2", "10", title="Biologie", ins_oid=INS_OID_TEST),
            XdmDoc(
                pdf,
                "DOC0002.PDF",
                "57833-6",
                "42",
                "application/pdf",
                "Ordonnance",
                confidentiality=("N", "MASQUE_PS"),
            ),
        ]
    )
    result = read_xdm(archive)
    assert result.refusal is None
    first, second = result.documents
    assert first.refusal is None and second.refusal is None
    assert first.content == cda and second.content == pdf
    assert first.member == "IHE_XDM/SUBSET01/DOC0001.XML"
    assert first.sha256 == hashlib.sha256(cda).hexdigest()
    entry = first.entry
    assert entry.patient_id is not None
    assert (entry.patient_id.value, entry.patient_id.oid) == (INS, INS_OID_TEST)
    assert entry.patient_id.is_ins
    assert entry.type_code is not None and entry.type_code.code == "11502-2"
    assert entry.type_code.system == "2.16.840.1.113883.6.1"
    assert entry.class_code is not None and entry.class_code.code == "10"
    assert entry.format_code is not None and entry.format_code.code == "urn:ihe:iti:xds-sd:pdf:2008"
    assert [c.code for c in second.entry.confidentiality] == ["N", "MASQUE_PS"]
    assert entry.title == "Biologie"
    assert entry.mime_type == "text/xml"
    assert entry.size == len(cda)
    assert entry.hash_sha1 == hashlib.sha1(cda).hexdigest()  # noqa: S324
    assert entry.unique_id == "1.2.250.1.999.3.1"
    assert entry.uri == "DOC0001.XML"
    assert entry.creation_time == datetime(2025, 1, 15, 9, 30, tzinfo=timezone.utc)
    assert entry.service_start == datetime(2025, 1, 15, tzinfo=timezone.utc)
    assert entry.service_stop == datetime(2025, 1, 15, 12, 0, tzinfo=timezone.utc)
    [author] = entry.authors
    assert author.rpps == RPPS and author.national_id == "8" + RPPS
    assert (author.family_name, author.given_name) == ("MARTIN", "Émile")
    assert author.institution == "Cabinet Martin" and author.institution_id == "11750000001"
    assert author.role is not None and author.role.code == "10" and author.role.display == "Médecin"
    assert author.specialty is not None and author.specialty.code == "G15_10/SM26"
    assert entry.source_patient_id is not None and entry.source_patient_id.value == "IPP123"


def test_production_ins_oid_is_ins() -> None:
    result = read_xdm(make_xdm([XdmDoc(make_cda(), ins_oid=INS_OID_NIR)]))
    pid = result.documents[0].entry.patient_id
    assert pid is not None and pid.oid == INS_OID_NIR and pid.is_ins


def test_looks_like_xdm() -> None:
    assert looks_like_xdm(make_xdm([XdmDoc(make_cda())]))
    assert not looks_like_xdm(make_zip([("a.txt", b"x")]))
    assert not looks_like_xdm(b"PK not a zip")


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (XdmDoc(make_cda(), declared_hash="0" * 40), Reason.HASH_MISMATCH),
        (XdmDoc(make_cda(), declared_size=5), Reason.SIZE_MISMATCH),
        (XdmDoc(make_cda(), uri="DOC9999.XML"), Reason.MISSING_DOCUMENT),
        (XdmDoc(make_cda(), uri="../../README.TXT"), Reason.UNSAFE_PATH),
        (XdmDoc(make_cda(), uri="/etc/passwd"), Reason.UNSAFE_PATH),
        (XdmDoc(make_cda(), uri="http://evil.example/doc"), Reason.UNSAFE_PATH),
    ],
    ids=["bad-hash", "bad-size", "missing-member", "uri-traversal", "uri-absolute", "uri-remote"],
)
def test_per_document_refusal_keeps_other_documents(doc: XdmDoc, reason: Reason) -> None:
    good = XdmDoc(make_pdf("ok"), "DOC0002.PDF", mime_type="application/pdf")
    result = read_xdm(make_xdm([doc, good]))
    assert result.refusal is None
    bad, fine = result.documents
    assert bad.refusal is not None and bad.refusal.reason is reason
    assert fine.refusal is None and fine.content == good.content


_ZEROS = b"\0" * (20 * 1024 * 1024)


def _bomb() -> bytes:
    """20 MiB of zeros deflated to ~20 KiB, referenced by the metadata."""
    return make_zip(
        [
            ("IHE_XDM/SUBSET01/METADATA.XML", make_metadata([XdmDoc(_ZEROS)])),
            ("IHE_XDM/SUBSET01/DOC0001.XML", _ZEROS),
        ]
    )


def _lying_bomb() -> bytes:
    """A bomb whose central directory claims a small size (the reader must count real bytes)."""
    data = bytearray(_bomb())
    real = 20 * 1024 * 1024
    small = (1000).to_bytes(4, "little")
    needle = real.to_bytes(4, "little")
    data[:] = data.replace(needle, small)
    return bytes(data)


@pytest.mark.parametrize(
    ("archive", "limits", "reason"),
    [
        (b"not a zip at all", Limits(), Reason.NOT_A_ZIP),
        (make_zip([("a.txt", b"x")]), Limits(), Reason.NOT_XDM),
        (_bomb(), Limits(), Reason.ZIP_BOMB),
        (
            _bomb(),
            Limits(max_compression_ratio=10**9, max_member_size=1024 * 1024),
            Reason.ARCHIVE_TOO_LARGE,
        ),
        (_lying_bomb(), Limits(), Reason.CORRUPT_ARCHIVE),
        (
            make_xdm([XdmDoc(make_cda())], extra=[("../../evil.sh", b"rm -rf /")]),
            Limits(),
            Reason.UNSAFE_PATH,
        ),
        (
            make_xdm([XdmDoc(make_cda())], extra=[("/etc/cron.d/x", b"x")]),
            Limits(),
            Reason.UNSAFE_PATH,
        ),
        (
            make_xdm([XdmDoc(make_cda())], extra=[("IHE_XDM\\..\\x", b"x")]),
            Limits(),
            Reason.UNSAFE_PATH,
        ),
        (make_xdm([XdmDoc(make_cda())], extra=[("C:/x", b"x")]), Limits(), Reason.UNSAFE_PATH),
        (
            make_xdm([XdmDoc(make_cda())], extra=[("IHE_XDM/SUBSET01/INNER.ZIP", b"PK")]),
            Limits(),
            Reason.NESTED_ARCHIVE,
        ),
        (
            make_xdm([XdmDoc(make_zip([("a", b"b")]), "DOC0001.XML")]),
            Limits(),
            Reason.NESTED_ARCHIVE,
        ),
        (
            make_xdm([XdmDoc(make_cda())], extra=[(f"F{i}.TXT", b"x") for i in range(20)]),
            Limits(max_zip_members=10),
            Reason.TOO_MANY_MEMBERS,
        ),
        (
            make_xdm([XdmDoc(make_cda())], extra=[("readme.txt", b"dup")]),
            Limits(),
            Reason.DUPLICATE_MEMBER,
        ),
        (make_xdm([XdmDoc(make_cda())], metadata=xxe("<x/>")), Limits(), Reason.XML_FORBIDDEN),
        (make_xdm([XdmDoc(make_cda())], metadata=billion_laughs()), Limits(), Reason.XML_FORBIDDEN),
        (make_xdm([XdmDoc(make_cda())], metadata=b"<unclosed"), Limits(), Reason.XML_MALFORMED),
        (make_xdm([XdmDoc(make_cda())]), Limits(max_xml_bytes=100), Reason.XML_TOO_LARGE),
    ],
    ids=[
        "not-zip",
        "no-metadata",
        "bomb-ratio",
        "bomb-member-size",
        "bomb-lying-header",
        "traversal",
        "absolute",
        "backslash",
        "drive-letter",
        "nested-zip-name",
        "nested-zip-content",
        "too-many-members",
        "duplicate-casefold",
        "xxe",
        "billion-laughs",
        "malformed-xml",
        "xml-too-large",
    ],
)
def test_hostile_archives_refused(archive: bytes, limits: Limits, reason: Reason) -> None:
    result = read_xdm(archive, limits)
    assert result.refusal is not None, result
    assert result.refusal.reason is reason, result.refusal
    assert result.documents == ()


def test_total_uncompressed_limit_counts_real_bytes() -> None:
    docs = [
        XdmDoc(make_pdf("x" * 10) * 3, f"DOC000{i}.PDF", mime_type="application/pdf")
        for i in range(1, 4)
    ]
    archive = make_xdm(docs)
    size = len(docs[0].content)
    assert read_xdm(archive).refusal is None
    result = read_xdm(archive, Limits(max_total_uncompressed=size * 2 + 100))
    assert result.refusal is not None and result.refusal.reason is Reason.ARCHIVE_TOO_LARGE


def test_encrypted_member_refused() -> None:
    data = bytearray(make_xdm([XdmDoc(make_cda())]))
    # Set the "encrypted" general-purpose flag (APPNOTE 4.4.4 bit 0) in every central header.
    index = 0
    while (index := data.find(b"PK\x01\x02", index)) != -1:
        data[index + 8] |= 0x01
        index += 4
    result = read_xdm(bytes(data))
    assert result.refusal is not None and result.refusal.reason is Reason.ENCRYPTED_MEMBER


def test_stored_members_and_several_subsets() -> None:
    one, two = make_cda("11488-4"), make_cda("60591-5")
    archive = make_zip(
        [
            ("IHE_XDM/SUBSET01/METADATA.XML", make_metadata([XdmDoc(one)])),
            ("IHE_XDM/SUBSET01/DOC0001.XML", one),
            ("IHE_XDM/SUBSET02/METADATA.XML", make_metadata([XdmDoc(two, type_code="60591-5")])),
            ("IHE_XDM/SUBSET02/DOC0001.XML", two),
        ],
        compression=zipfile.ZIP_STORED,
    )
    result = read_xdm(archive)
    assert result.refusal is None
    assert [d.content for d in result.documents] == [one, two]
    assert [d.entry.type_code.code for d in result.documents if d.entry.type_code] == [
        "11488-4",
        "60591-5",
    ]


def test_metadata_without_entries_and_foreign_object_types() -> None:
    xml = make_metadata([XdmDoc(make_cda())]).replace(
        b"7edca82f-054d-47f2-a032-9b2a5b5186c1", b"34268e47-fdf5-41a6-ba33-82133c465248"
    )
    assert parse_metadata(xml, Limits()) == []
