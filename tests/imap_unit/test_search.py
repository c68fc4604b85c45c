"""SEARCH evaluation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mailserver.imap.commands_selected import Search
from mailserver.imap.envelope import parse_addresses
from mailserver.imap.parser import parse_command
from mailserver.imap.search import BadCharset, SearchMessage, compile_search

HEADER = (b"From: =?utf-8?q?J=C3=A9r=C3=B4me?= <jerome@ch.example>\r\n"
          b"To: pat@x.example\r\nCc: cc@x.example\r\nSubject: Compte rendu\r\n"
          b"Date: Tue, 5 Mar 2024 10:00:00 +0100\r\nX-Prio: urgent\r\n\r\n")
BODY = b"Bonjour, voici le r\xc3\xa9sultat.\r\n"
HEADER_UTF8 = HEADER.replace(b"Subject: Compte rendu", b"Subject: Compte rendu\r\n"
                             b"Content-Type: text/plain; charset=utf-8")


def message(**kw: object) -> SearchMessage:
    calls: list[str] = []
    base = dict(seq=2, uid=20, flags=frozenset({"\\Seen", "$Urgent"}),
                internaldate=datetime(2024, 3, 5, 23, 30, tzinfo=timezone.utc), size=500,
                header=lambda: calls.append("h") or HEADER_UTF8,
                body=lambda: calls.append("b") or BODY, modseq=7)
    base.update(kw)
    return SearchMessage(**base)  # type: ignore[arg-type]


CASES = [
    ("all", b"ALL", True), ("seen", b"SEEN", True), ("unseen", b"UNSEEN", False),
    ("answered", b"ANSWERED", False), ("unanswered", b"UNANSWERED", True),
    ("keyword", b"KEYWORD $urgent", True), ("unkeyword", b"UNKEYWORD $Urgent", False),
    ("new", b"NEW", False), ("old", b"OLD", True), ("recent", b"RECENT", False),
    ("deleted", b"DELETED", False), ("undeleted", b"UNDELETED", True),
    ("draft", b"DRAFT", False), ("undraft", b"UNDRAFT", True),
    ("flagged", b"FLAGGED", False), ("unflagged", b"UNFLAGGED", True),
    ("from-decoded", b"FROM {8+}\r\nj\xc3\xa9r\xc3\xb4me", True),
    ("from-addr", b"FROM CH.EXAMPLE", True),
    ("to", b"TO pat", True), ("cc", b"CC nobody", False), ("bcc", b"BCC x", False),
    ("subject", b'SUBJECT "rendu"', True), ("header", b"HEADER X-Prio URG", True),
    ("header-empty", b'HEADER X-Prio ""', True), ("header-missing", b'HEADER X-No ""', False),
    ("body-decoded", b"BODY {9+}\r\nr\xc3\xa9sultat", True),
    ("body-not-header", b"BODY compte", False),
    ("text-header", b"TEXT compte", True),
    ("before", b"BEFORE 5-Mar-2024", False), ("on", b"ON 5-Mar-2024", True),
    ("since", b"SINCE 5-Mar-2024", True), ("sentbefore", b"SENTBEFORE 6-Mar-2024", True),
    ("senton", b"SENTON 5-Mar-2024", True), ("sentsince", b"SENTSINCE 6-Mar-2024", False),
    ("larger", b"LARGER 499", True), ("smaller", b"SMALLER 500", False),
    ("uid", b"UID 10:*", True), ("uid-miss", b"UID 1:5", False),
    ("seqset", b"2", True), ("seq-star", b"*", False),
    ("not", b"NOT SEEN", False), ("or", b"OR DELETED TO pat", True),
    ("group", b"(SEEN LARGER 600)", False), ("modseq", b"MODSEQ 7", True),
    ("modseq-miss", b"MODSEQ 8", False),
]


@pytest.mark.parametrize(("criteria", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_search_keys(criteria: bytes, expected: bool) -> None:
    cmd = parse_command(b"a SEARCH CHARSET UTF-8 " + criteria + b"\r\n")
    assert isinstance(cmd, Search) and cmd.key is not None, cmd
    prog = compile_search(cmd.key, cmd.charset, max_seq=3, max_uid=30)
    assert prog.matches(message()) is expected


def test_header_only_keys_do_not_load_body() -> None:
    cmd = parse_command(b"a SEARCH FROM jerome SENTON 5-Mar-2024\r\n")
    assert isinstance(cmd, Search) and cmd.key is not None
    prog = compile_search(cmd.key, None, max_seq=3, max_uid=30)
    assert prog.needs_headers and not prog.needs_body

    def no_body() -> bytes:
        raise AssertionError("body loaded")

    assert prog.matches(message(body=no_body))


def test_flag_keys_need_nothing() -> None:
    cmd = parse_command(b"a SEARCH UNSEEN LARGER 3\r\n")
    assert isinstance(cmd, Search) and cmd.key is not None
    prog = compile_search(cmd.key, None, max_seq=1, max_uid=1)
    assert not prog.needs_headers and not prog.needs_body


def test_unknown_charset_is_badcharset() -> None:
    cmd = parse_command(b"a SEARCH CHARSET KOI8-R TEXT x\r\n")
    assert isinstance(cmd, Search) and cmd.key is not None
    with pytest.raises(BadCharset) as info:
        compile_search(cmd.key, cmd.charset, max_seq=1, max_uid=1)
    assert "UTF-8" in info.value.supported


ADDRESS_CASES = [
    # RFC 5322 3.2.2 comments inside an angle address: ENVELOPE shows user@domain.org.
    ("comments-in-angle", b"From: <user (comment)@ (comment) domain.org>\r\n",
     b"FROM user@domain.org", True),
    ("comment-text-not-searched", b"From: <user (comment)@ (comment) domain.org>\r\n",
     b"FROM comment", False),
    # A trailing comment is the personal name of a bare address (as Dovecot reads it).
    ("comment-as-name", b"From: user@domain.org (Real Name)\r\n", b'FROM "Real Name"', True),
    ("name-and-address", b"From: Real Name <user@domain.org>\r\n",
     b'FROM "Real Name <user@domain.org>"', True),
    ("encoded-name", b"To: =?utf-8?q?Z=C3=A9lie?= <z@x.example>\r\n",
     b"TO {6+}\r\nz\xc3\xa9lie", True),
    ("group", b"Cc: soins: a@x.example, b@x.example;\r\n", b"CC b@x.example", True),
    ("not-an-address", b"From: nonsense\r\n", b"FROM nonsense", True),
]


@pytest.mark.parametrize(("header", "criteria", "expected"), [c[1:] for c in ADDRESS_CASES],
                         ids=[c[0] for c in ADDRESS_CASES])
def test_address_fields_match_as_the_envelope_shows_them(header: bytes, criteria: bytes,
                                                         expected: bool) -> None:
    assert _matches(criteria, header + b"Subject: x\r\n\r\n") is expected


def _matches(criteria: bytes, header: bytes) -> bool:
    """Whether ``SEARCH CHARSET UTF-8 criteria`` matches the message with this header block."""
    cmd = parse_command(b"a SEARCH CHARSET UTF-8 " + criteria + b"\r\n")
    assert isinstance(cmd, Search) and cmd.key is not None, cmd
    prog = compile_search(cmd.key, cmd.charset, max_seq=3, max_uid=30)
    return prog.matches(message(header=lambda: header))


def test_trailing_comment_is_the_personal_name() -> None:
    assert parse_addresses("user@domain.org (Real Name)") == [
        ("Real Name", None, "user", "domain.org")]
    assert parse_addresses("<user (c)@ (c) domain.org>, Bob (x) <bob@b.example>") == [
        (None, None, "user", "domain.org"), ("Bob", None, "bob", "b.example")]


FIELD_CASES = [
    # A folded value is searched unfolded (RFC 5322 2.2.3): the line break goes, the blank stays.
    ("folded", b"Subject: Compte rendu\r\n de consultation\r\n", b'SUBJECT "rendu de"', True),
    ("folded-tab", b"Subject: Compte\r\n\trendu\r\n", b'SUBJECT "compte\trendu"', True),
    ("encoded-words", b"Subject: =?utf-8?q?R=C3=A9sultats?= =?utf-8?q?_biologie?=\r\n",
     b"SUBJECT {19+}\r\nr\xc3\xa9sultats biologie", True),
    ("raw-utf8", b"Subject: R\xc3\xa9sultat\r\n", b"SUBJECT {9+}\r\nr\xc3\xa9sultat", True),
    ("latin1", b"Subject: R\xe9sultat\r\n", b"SUBJECT {9+}\r\nr\xc3\xa9sultat", True),
    ("name-any-case", b"x-PRIO: urgent\r\n", b"HEADER X-Prio urgent", True),
    ("second-field", b"X-Tag: a\r\nX-Tag: b\r\n", b"HEADER X-Tag b", True),
    ("other-field", b"X-Other: rendu\r\n", b'SUBJECT "rendu"', False),
    ("in-body-only", b"X-A: 1\r\n\r\nSubject: rendu\r\n", b'SUBJECT "rendu"', False),
    ("empty-present", b"Subject:\r\n", b'SUBJECT ""', True),
    ("empty-absent", b"X-A: 1\r\n", b'SUBJECT ""', False),
]


@pytest.mark.parametrize(("header", "criteria", "expected"), [c[1:] for c in FIELD_CASES],
                         ids=[c[0] for c in FIELD_CASES])
def test_header_fields_are_read_unfolded_and_decoded(header: bytes, criteria: bytes,
                                                     expected: bool) -> None:
    assert _matches(criteria, header if b"\r\n\r\n" in header else header + b"\r\n") is expected


def test_the_header_block_is_read_once_for_several_keys() -> None:
    calls: list[str] = []
    cmd = parse_command(b"a SEARCH SUBJECT rendu HEADER X-Prio urgent FROM jerome\r\n")
    assert isinstance(cmd, Search) and cmd.key is not None
    prog = compile_search(cmd.key, None, max_seq=3, max_uid=30)
    assert prog.matches(message(header=lambda: calls.append("h") or HEADER_UTF8))
    assert calls == ["h"]
