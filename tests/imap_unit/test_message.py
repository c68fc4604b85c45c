"""Golden BODYSTRUCTURE / ENVELOPE and section extraction."""

from __future__ import annotations

import pytest

from mailserver.imap.fetchspec import Section
from mailserver.imap.message import MessageSummary, apply_partial, fetch_section

NESTED = (
    b"From: =?utf-8?q?J=C3=A9r=C3=B4me?= <jerome@ch.example>\r\n"
    b"To: equipe: a@x.example, \"Doe, J\" <d@y.example>;, c@z.example\r\n"
    b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <1@ch.example>\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: multipart/alternative; boundary=YY\r\n"
    b"\r\n"
    b"--YY\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"line1\r\nline2\r\n"
    b"--YY\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>hi</p>\r\n"
    b"--YY--\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Disposition: attachment; filename=fwd.eml\r\n"
    b"\r\n"
    b"From: inner@x.example\r\n"
    b"Subject: inner\r\n"
    b"Content-Type: multipart/mixed; boundary=ZZ\r\n"
    b"\r\n"
    b"--ZZ\r\n"
    b"\r\n"
    b"inner text\r\n"
    b"--ZZ\r\n"
    b"Content-Type: application/pdf; name=cr.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Language: fr, en\r\n"
    b"Content-Location: http://x.example/cr.pdf\r\n"
    b"\r\n"
    b"JVBERi0=\r\n"
    b"--ZZ--\r\n"
    b"--XX--\r\n"
    b"epilogue\r\n"
)

INNER_ENV = (b'(NIL "inner" ((NIL NIL "inner" "x.example")) ((NIL NIL "inner" "x.example")) '
             b'((NIL NIL "inner" "x.example")) NIL NIL NIL NIL NIL)')


def test_golden_bodystructure_nested() -> None:
    s = MessageSummary.from_bytes(NESTED)
    assert s.bodystructure == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 12 2 NIL NIL NIL NIL) '
        b'("text" "html" NIL NIL NIL "QUOTED-PRINTABLE" 9 1 NIL NIL NIL NIL) "alternative" '
        b'("boundary" "YY") NIL NIL NIL) '
        b'("message" "rfc822" NIL NIL NIL "7BIT" 277 ' + INNER_ENV + b' '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL) '
        b'("application" "pdf" ("name" "cr.pdf") NIL NIL "BASE64" 8 NIL NIL ("fr" "en") '
        b'"http://x.example/cr.pdf") "mixed" ("boundary" "ZZ") NIL NIL NIL) 15 NIL '
        b'("attachment" ("filename" "fwd.eml")) NIL NIL) '
        b'"mixed" ("boundary" "XX") NIL NIL NIL)'
    )


def test_golden_body_non_extensible() -> None:
    s = MessageSummary.from_bytes(NESTED)
    assert s.body == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 12 2) '
        b'("text" "html" NIL NIL NIL "QUOTED-PRINTABLE" 9 1) "alternative") '
        b'("message" "rfc822" NIL NIL NIL "7BIT" 277 ' + INNER_ENV + b' '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 1) '
        b'("application" "pdf" ("name" "cr.pdf") NIL NIL "BASE64" 8) "mixed") 15) "mixed")'
    )


def test_golden_envelope_encoded_words_and_groups() -> None:
    s = MessageSummary.from_bytes(NESTED)
    sender = b'(("=?utf-8?q?J=C3=A9r=C3=B4me?=" NIL "jerome" "ch.example"))'
    assert s.envelope == (
        b'("Mon, 7 Feb 1994 21:52:25 -0800" "=?utf-8?q?R=C3=A9sultats?=" '
        + sender + b" " + sender + b" " + sender + b" "
        b'((NIL NIL "equipe" NIL) (NIL NIL "a" "x.example") ("Doe, J" NIL "d" "y.example") '
        b'(NIL NIL NIL NIL) (NIL NIL "c" "z.example")) NIL NIL NIL "<1@ch.example>")'
    )


def test_summary_json_round_trip() -> None:
    s = MessageSummary.from_bytes(NESTED + b"\xe9")
    assert MessageSummary.from_json(s.to_json()) == s


SECTIONS = [
    ("whole", Section(), NESTED),
    ("header", Section((), "HEADER"), NESTED[: NESTED.index(b"\r\n\r\n") + 4]),
    ("alt-plain", Section((1, 1)), b"line1\r\nline2"),
    ("alt-html-mime", Section((1, 2), "MIME"),
     b"Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"),
    ("rfc822-header", Section((2,), "HEADER"),
     b"From: inner@x.example\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=ZZ\r\n\r\n"),
    ("rfc822-fields", Section((2,), "HEADER.FIELDS", ("SUBJECT",)), b"Subject: inner\r\n\r\n"),
    ("rfc822-inner-part", Section((2, 1)), b"inner text"),
    ("rfc822-inner-pdf", Section((2, 2)), b"JVBERi0="),
    ("header-fields-not", Section((), "HEADER.FIELDS.NOT",
                                  ("FROM", "TO", "DATE", "MESSAGE-ID", "CONTENT-TYPE")),
     b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\n\r\n"),
    ("missing-part", Section((9,)), None),
    ("text-of-non-message", Section((1, 1), "TEXT"), None),
]


@pytest.mark.parametrize(("section", "expected"), [x[1:] for x in SECTIONS],
                         ids=[x[0] for x in SECTIONS])
def test_sections(section: Section, expected: bytes | None) -> None:
    s = MessageSummary.from_bytes(NESTED)
    assert fetch_section(NESTED, s.root, section) == expected


def test_single_part_message_part_one_is_body() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    s = MessageSummary.from_bytes(raw)
    assert fetch_section(raw, s.root, Section((1,))) == b"body\r\n"
    assert fetch_section(raw, s.root, Section((), "TEXT")) == b"body\r\n"
    assert s.bodystructure.startswith(b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 6 1')


def test_folded_header_fields_keep_continuations() -> None:
    raw = b"To: a@x,\r\n b@y\r\nX-A: 1\r\n\r\n"
    s = MessageSummary.from_bytes(raw)
    got = fetch_section(raw, s.root, Section((), "HEADER.FIELDS", ("to",)))
    assert got == b"To: a@x,\r\n b@y\r\n\r\n"


@pytest.mark.parametrize(("partial", "expected"), [
    ((0, 3), b"012"),
    ((8, 10), b"89"),           # length overrun: truncated
    ((10, 5), b""),             # origin at the end
    ((50, 5), b""),             # origin beyond the size
], ids=["plain", "length-overrun", "origin-at-end", "origin-beyond"])
def test_partial(partial: tuple[int, int], expected: bytes) -> None:
    assert apply_partial(b"0123456789", partial) == expected
