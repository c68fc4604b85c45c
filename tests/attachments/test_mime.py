"""MIME walk: encodings, filenames, nesting, limits, MSSanté header facts."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest

from attachments import Limits, Reason, extract
from attachments.mime import sanitise_filename
from tests.attachments.corpus import Attachment, make_message, make_pdf, make_png

PDF = make_pdf("Ordonnance")


def _raw(msg: EmailMessage) -> bytes:
    return msg.as_bytes()


@pytest.mark.parametrize(
    "cte", ["base64", "quoted-printable", "7bit", "8bit"], ids=lambda c: f"cte-{c}"
)
def test_transfer_encodings_decode_to_original_bytes(cte: str) -> None:
    data = b"ligne 1\r\nligne 2 = accentu\xc3\xa9e\r\n" if cte != "7bit" else b"plain ascii\n"
    msg = make_message([Attachment(data, "note.txt", "text", "plain", cte=cte)])
    if cte in ("7bit", "8bit"):
        # EmailMessage.add_attachment with bytes refuses 7bit/8bit; set the payload by hand.
        mime_part = list(msg.iter_attachments())[0]
        mime_part.set_payload(data)
        del mime_part["Content-Transfer-Encoding"]
        mime_part["Content-Transfer-Encoding"] = cte
    result = extract(_raw(msg))
    assert result.complete
    [part] = result.parts
    assert part.content.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    assert part.sha256 == hashlib.sha256(part.content).hexdigest()


def test_binary_pdf_attachment_round_trips() -> None:
    result = extract(_raw(make_message([Attachment(PDF, "ordo.pdf", "application", "pdf")])))
    [part] = result.parts
    assert part.content == PDF
    assert part.size == len(PDF)
    assert part.content_type == "application/pdf"
    assert part.path == "2"  # part 1 is the text body
    assert part.filename == "ordo.pdf"


def test_uuencode() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nSubject: uu\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: application/octet-stream; name=x.bin\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"
        b"begin 644 x.bin\r\n%)5!$1BT`\r\n`\r\nend\r\n--B--\r\n"
    )
    [part] = extract(raw).parts
    assert part.content == b"%PDF-"
    assert part.filename == "x.bin"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("attachment; filename*=utf-8''%C3%A9cho%20r%C3%A9nale.pdf", "écho rénale.pdf"),
        ('attachment; filename="=?utf-8?b?w6ljaG8ucGRm?="', "écho.pdf"),
        ("attachment; filename*0*=utf-8''compte%20; filename*1=rendu.pdf", "compte rendu.pdf"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\x\\\\bilan.pdf"', "bilan.pdf"),
        ('attachment; filename="..."', "part-1.pdf"),
    ],
    ids=["rfc2231", "rfc2047", "rfc2231-continuation", "traversal", "windows-path", "dots-only"],
)
def test_filenames(header: str, expected: str) -> None:
    raw = (
        "MIME-Version: 1.0\r\nSubject: f\r\nContent-Type: application/pdf\r\n"
        f"Content-Disposition: {header}\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    ).encode()
    [part] = extract(raw).parts
    assert part.filename == expected
    assert "/" not in part.filename and "\\" not in part.filename


def test_name_from_content_type_and_generated_name() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        b'Content-Type: image/png; name="radio.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"iVBORw0KGgo=\r\n--B\r\nContent-Type: image/png\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=\r\n--B--\r\n"
    )
    first, second = extract(raw).parts
    assert (first.filename, first.declared_filename) == ("radio.png", True)
    assert (second.filename, second.declared_filename) == ("part-2.png", False)


def test_inline_xml_without_filename_is_a_part_but_html_body_is_not() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        b"Content-Type: text/html\r\n\r\n<p>Bonjour</p>\r\n--B\r\n"
        b"Content-Type: text/xml\r\n\r\n<ClinicalDocument/>\r\n--B--\r\n"
    )
    [part] = extract(raw).parts
    assert (part.path, part.content_type, part.filename) == ("2", "text/xml", "part-2.xml")
    assert part.content.strip() == b"<ClinicalDocument/>"


def test_sanitise_caps_length_and_keeps_extension() -> None:
    name, declared = sanitise_filename("é" * 300 + ".pdf", "application/pdf", "1")
    assert declared and name.endswith(".pdf") and len(name.encode()) <= 200
    assert sanitise_filename("a\x00b<c>.pdf", "application/pdf", "1")[0] == "a_b_c_.pdf"


def test_nested_multipart_and_rfc822_paths() -> None:
    inner = make_message([Attachment(make_png(), "echo.png", "image", "png")], subject="inner")
    alt = EmailMessage(policy=default_policy)
    alt["Subject"] = "outer"
    alt.set_content("texte")
    alt.add_alternative("<p>html</p>", subtype="html")
    alt.make_mixed()
    alt.add_attachment(PDF, maintype="application", subtype="pdf", filename="cr.pdf")
    alt.add_attachment(inner)  # message/rfc822
    result = extract(_raw(alt))
    assert result.complete
    paths = {p.filename: p.path for p in result.parts}
    # 1 = multipart/alternative (1.1 text, 1.2 html), 2 = pdf, 3 = message/rfc822 whose body is a
    # multipart: its children are 3.1 (text) and 3.2 (png), per RFC 3501 6.4.5.
    assert paths == {"cr.pdf": "2", "echo.png": "3.2"}
    assert result.body_text.startswith("texte")
    assert result.facts.subject == "outer"


def test_single_part_message_is_part_1() -> None:
    raw = (
        b"Subject: x\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0=\r\n"
    )
    [part] = extract(raw).parts
    assert part.path == "1"
    assert part.filename == "part-1.pdf"


def test_mss_headers() -> None:
    msg = make_message(
        [],
        subject="XDM/1.0/DDM+Compte rendu DUPONT Jeanne 01/03/1979",
        headers={
            "X-MSS-CODECDA": "11488-4, 11502-2,11488-4",
            "X-MSS-INS": "o",
            "X-MSS-NIL": "LogicielX 2.1",
            "Disposition-Notification-To": "emile.martin@medecin.mssante.fr",
        },
    )
    facts = extract(_raw(msg)).facts
    assert facts.codes_cda == ("11488-4", "11502-2")
    assert facts.mss_ins == "O"
    assert facts.mss_nil == "LogicielX 2.1"
    assert facts.disposition_notification_to == "emile.martin@medecin.mssante.fr"
    assert facts.subject.startswith("XDM/1.0/DDM+Compte rendu")
    assert facts.from_addr == "emile.martin@medecin.mssante.fr"


def test_invalid_mss_ins_is_none_and_absent_headers() -> None:
    facts = extract(_raw(make_message([], headers={"X-MSS-INS": "maybe"}))).facts
    assert facts.mss_ins is None
    assert facts.codes_cda == () and facts.mss_nil is None
    assert facts.disposition_notification_to is None


def _nested(depth: int) -> bytes:
    body = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    for level in range(depth):
        b = f"B{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + b
            + b"\r\n\r\n--"
            + b
            + b"\r\n"
            + body
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return b"Subject: deep\r\n" + body


@pytest.mark.parametrize(
    ("raw", "limits", "reason"),
    [
        (b"x" * 2000, Limits(max_message_bytes=1000), Reason.MESSAGE_TOO_LARGE),
        (_nested(12), Limits(max_depth=5), Reason.TOO_DEEP),
        (
            _raw(
                make_message([Attachment(PDF, f"{i}.pdf", "application", "pdf") for i in range(6)])
            ),
            Limits(max_parts=4),
            Reason.TOO_MANY_PARTS,
        ),
        (
            _raw(
                make_message([Attachment(PDF, f"{i}.pdf", "application", "pdf") for i in range(3)])
            ),
            Limits(max_total_decoded=len(PDF) * 2),
            Reason.DECODED_TOO_LARGE,
        ),
    ],
    ids=["raw-size", "depth", "part-count", "decoded-size"],
)
def test_limits_stop_with_reason(raw: bytes, limits: Limits, reason: Reason) -> None:
    result = extract(raw, limits)
    assert result.refusal is not None and result.refusal.reason is reason
    assert not result.complete
    assert result.refusal.text


def test_delimiter_flood_refused_before_parsing() -> None:
    part = b"--B\r\nContent-Type: application/pdf\r\n\r\nx\r\n"
    raw = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + part * 50_000 + b"--B--\r\n"
    result = extract(raw)
    assert result.refusal is not None and result.refusal.reason is Reason.TOO_MANY_PARTS
    assert result.parts == ()


def test_limit_keeps_parts_read_before() -> None:
    raw = _raw(make_message([Attachment(PDF, f"{i}.pdf", "application", "pdf") for i in range(3)]))
    result = extract(raw, Limits(max_total_decoded=len(PDF) * 2))
    assert [p.filename for p in result.parts] == ["0.pdf", "1.pdf"]


def test_depth_within_limit_is_complete() -> None:
    result = extract(_nested(4), Limits(max_depth=8))
    assert result.complete and len(result.parts) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 50,
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
        b"Subject: \xff\xfe\r\n",
    ],
    ids=["empty", "binary", "multipart-no-boundary", "bad-header-bytes"],
)
def test_garbage_never_raises(raw: bytes) -> None:
    result = extract(raw)
    assert isinstance(result.parts, tuple)
