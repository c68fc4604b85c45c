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
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "QUOTED-PRINTABLE" 9 0 NIL NIL NIL '
        b'NIL) "alternative" '
        b'("boundary" "YY") NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7BIT" 277 ' + INNER_ENV + b' '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
        b'("application" "pdf" ("name" "cr.pdf") NIL NIL "BASE64" 8 NIL NIL ("fr" "en") '
        b'"http://x.example/cr.pdf") "mixed" ("boundary" "ZZ") NIL NIL NIL) 14 NIL '
        b'("attachment" ("filename" "fwd.eml")) NIL NIL) '
        b'"mixed" ("boundary" "XX") NIL NIL NIL)'
    )


def test_golden_body_non_extensible() -> None:
    s = MessageSummary.from_bytes(NESTED)
    assert s.body == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 12 1)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "QUOTED-PRINTABLE" 9 0) "alternative")'
        b'("message" "rfc822" NIL NIL NIL "7BIT" 277 ' + INNER_ENV + b' '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 0)'
        b'("application" "pdf" ("name" "cr.pdf") NIL NIL "BASE64" 8) "mixed") 14) "mixed")'
    )


def test_golden_envelope_encoded_words_and_groups() -> None:
    s = MessageSummary.from_bytes(NESTED)
    sender = b'(("=?utf-8?q?J=C3=A9r=C3=B4me?=" NIL "jerome" "ch.example"))'
    assert s.envelope == (
        b'("Mon, 7 Feb 1994 21:52:25 -0800" "=?utf-8?q?R=C3=A9sultats?=" '
        + sender + b" " + sender + b" " + sender + b" "
        b'((NIL NIL "equipe" NIL)(NIL NIL "a" "x.example")("Doe, J" NIL "d" "y.example")'
        b'(NIL NIL NIL NIL)(NIL NIL "c" "z.example")) NIL NIL NIL "<1@ch.example>")'
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
     b"From: inner@x.example\r\nSubject: inner\r\n"
     b"Content-Type: multipart/mixed; boundary=ZZ\r\n\r\n"),
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


# -- message/rfc822 section numbers (RFC 3501 6.4.5), as Dovecot numbers them ---------------

DEEP_INNER = (b"Subject: deep\r\n\r\ndeep body\r\n")
INNER = (b"From: a@x.example\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n"
         b"--Z\r\n\r\none\r\n--Z\r\nContent-Type: message/rfc822\r\n\r\n" + DEEP_INNER
         + b"--Z--\r\n")
TOP_RFC822 = b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" + INNER

RFC822_SECTIONS = [
    ("1-is-the-embedded-message", Section((1,)), INNER),
    ("1.HEADER", Section((1,), "HEADER"), INNER[:INNER.index(b"\r\n\r\n") + 4]),
    ("1.HEADER.FIELDS", Section((1,), "HEADER.FIELDS", ("SUBJECT",)), b"Subject: in\r\n\r\n"),
    ("1.TEXT", Section((1,), "TEXT"), INNER[INNER.index(b"\r\n\r\n") + 4:]),
    ("1.MIME-is-the-outer-header", Section((1,), "MIME"),
     b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n"),
    ("1.1", Section((1, 1)), b"one"),
    ("1.2-is-the-deep-message", Section((1, 2)), DEEP_INNER[:-2]),
    ("1.2.HEADER", Section((1, 2), "HEADER"), b"Subject: deep\r\n\r\n"),
    ("1.2.TEXT", Section((1, 2), "TEXT"), b"deep body"),
    ("1.2.MIME", Section((1, 2), "MIME"), b"Content-Type: message/rfc822\r\n\r\n"),
    ("1.2.1", Section((1, 2, 1)), b"deep body"),
    ("1.1.HEADER-of-text", Section((1, 1), "HEADER"), None),
    ("2-missing", Section((2,)), None),
    ("1.3-missing", Section((1, 3)), None),
    ("HEADER", Section((), "HEADER"), b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n"),
    ("TEXT", Section((), "TEXT"), INNER),
]


@pytest.mark.parametrize(("section", "expected"), [x[1:] for x in RFC822_SECTIONS],
                         ids=[x[0] for x in RFC822_SECTIONS])
def test_top_level_rfc822_sections(section: Section, expected: bytes | None) -> None:
    s = MessageSummary.from_bytes(TOP_RFC822)
    assert fetch_section(TOP_RFC822, s.root, section) == expected


def test_rfc822_in_multipart_in_rfc822() -> None:
    # The same message one level down: part 2 of a multipart (NESTED's fwd.eml position).
    raw = (b"Content-Type: multipart/mixed; boundary=O\r\n\r\n--O\r\n\r\nfirst\r\n--O\r\n"
           b"Content-Type: message/rfc822\r\n\r\n" + INNER + b"\r\n--O--\r\n")
    s = MessageSummary.from_bytes(raw)
    assert fetch_section(raw, s.root, Section((2,))) == INNER
    header = INNER[:INNER.index(b"\r\n\r\n") + 4]
    assert fetch_section(raw, s.root, Section((2,), "HEADER")) == header
    assert fetch_section(raw, s.root, Section((2, 2))) == DEEP_INNER[:-2]
    assert fetch_section(raw, s.root, Section((2, 2), "HEADER")) == b"Subject: deep\r\n\r\n"
    assert fetch_section(raw, s.root, Section((2, 2, 1))) == b"deep body"


def test_single_part_message_has_no_part_below_one() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    s = MessageSummary.from_bytes(raw)
    assert fetch_section(raw, s.root, Section((1, 1))) is None
    assert fetch_section(raw, s.root, Section((1,), "HEADER")) is None  # not a message/rfc822
    assert fetch_section(raw, s.root, Section((1,), "MIME")) == b"Subject: x\r\n\r\n"


# -- multipart boundaries and parameters (RFC 2045 5.1, RFC 2046 5.1.1) ---------------------

def test_folded_boundary_is_unfolded() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\n"
           b"--foo bar\r\n\r\none\r\n--foo bar\r\nContent-Type: text/html\r\n\r\n<p>\r\n"
           b"--foo bar--\r\n")
    s = MessageSummary.from_bytes(raw)
    assert s.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 3 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7BIT" 3 0 NIL NIL NIL NIL) "mixed" '
        b'("boundary" "foo bar") NIL NIL NIL)')
    assert fetch_section(raw, s.root, Section((2,))) == b"<p>"


def test_adjacent_delimiters_enclose_an_empty_part() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\n\r\none\r\n--B\r\n--B\r\n\r\nthree\r\n--B--\r\n")
    s = MessageSummary.from_bytes(raw)
    assert s.body == (b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 3 0)'
                      b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0)'
                      b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 5 0) "mixed")')
    assert [fetch_section(raw, s.root, Section((n,))) for n in (1, 2, 3)] == [
        b"one", b"", b"three"]


@pytest.mark.parametrize(("header", "params"), [
    (b"Content-Type: text/plain;\r\n", b'("charset" "us-ascii")'),
    (b"Content-Type: text/plain; charset=utf-8;\r\n", b'("charset" "utf-8")'),
    (b"Content-Type: text/plain;;charset=utf-8\r\n", b'("charset" "utf-8")'),
], ids=["trailing", "after-a-parameter", "doubled"])
def test_stray_semicolons_make_no_empty_parameter(header: bytes, params: bytes) -> None:
    s = MessageSummary.from_bytes(header + b"Content-Disposition: inline;\r\n\r\nx")
    assert s.bodystructure == (b'("text" "plain" ' + params + b' NIL NIL "7BIT" 1 0 NIL '
                               b'("inline" NIL) NIL NIL)')
