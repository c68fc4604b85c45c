"""Receiver framing and per-verb grammar."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailserver.imap import commands as c
from mailserver.imap import commands_selected as s
from mailserver.imap.fetchspec import FetchAttr, Section
from mailserver.imap.lexer import InvalidName
from mailserver.imap.parser import (
    ContinuationLine,
    IdleDone,
    Invalid,
    NeedLiteral,
    Receiver,
    parse_command,
)
from mailserver.imap.searchkeys import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
)
from mailserver.imap.seqset import SeqSet

SS = SeqSet.parse

VALID = [
    ("capability", b"a CAPABILITY", c.Capability("a")),
    ("noop-lower", b"a noop", c.Noop("a")),
    ("logout", b"a LOGOUT", c.Logout("a")),
    ("starttls", b"a STARTTLS", c.StartTLS("a")),
    ("authenticate", b"a AUTHENTICATE plain", c.Authenticate("a", "PLAIN", None)),
    ("authenticate-ir", b"a AUTHENTICATE PLAIN AGJvYgBwdw==",
     c.Authenticate("a", "PLAIN", b"\0bob\0pw")),
    ("authenticate-ir-empty", b"a AUTHENTICATE EXTERNAL =", c.Authenticate("a", "EXTERNAL", b"")),
    ("login-atoms", b"a LOGIN bob secret", c.Login("a", "bob", "secret")),
    ("login-quoted", b'a LOGIN "bob" "p\\"w\\\\"', c.Login("a", "bob", 'p"w\\')),
    ("select-inbox-case", b"a SELECT inBox", c.Select("a", "INBOX")),
    ("select-condstore", b"a SELECT INBOX (CONDSTORE)", c.Select("a", "INBOX", True)),
    ("select-qresync", b"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41,43:211))",
     c.Select("a", "INBOX", False, c.Qresync(67890007, 90060115194045000, SS("41,43:211")))),
    ("select-qresync-seq-match", b"a EXAMINE INBOX (QRESYNC (7 9 1:9 (1:3 5:7)))",
     c.Examine("a", "INBOX", False, c.Qresync(7, 9, SS("1:9")))),
    ("select-qresync-only-match", b"a SELECT INBOX (QRESYNC (7 9 (1 5)))",
     c.Select("a", "INBOX", False, c.Qresync(7, 9, None))),
    ("uid-fetch-vanished", b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12 VANISHED)",
     s.Fetch("a", SS("1:*"), (FetchAttr("UID"), FetchAttr("FLAGS"), FetchAttr("MODSEQ")), 12,
             True, True)),
    ("compress", b"a COMPRESS deflate", c.Compress("a", "DEFLATE")),
    ("append-catenate", b'a APPEND Drafts CATENATE (TEXT {2+}\r\nhi URL "/INBOX/;UID=3")',
     c.Append("a", "Drafts", (), None, (("TEXT", b"hi"), ("URL", b"/INBOX/;UID=3")))),
    ("examine-mutf7", b'a EXAMINE "Bo&AO4-te"', c.Examine("a", "Boîte")),
    ("create", b"a CREATE Archives/2024", c.Create("a", "Archives/2024")),
    ("create-use", b"a CREATE Brouillons (USE (\\Drafts))",
     c.Create("a", "Brouillons", ("\\Drafts",))),
    ("delete", b"a DELETE foo", c.Delete("a", "foo")),
    ("rename", b"a RENAME foo bar", c.Rename("a", "foo", "bar")),
    ("subscribe", b"a SUBSCRIBE foo", c.Subscribe("a", "foo")),
    ("unsubscribe", b"a UNSUBSCRIBE foo", c.Unsubscribe("a", "foo")),
    ("list-basic", b'a LIST "" *', c.List("a", "", ("*",))),
    ("list-percent", b"a LIST ~/ %", c.List("a", "~/", ("%",))),
    ("list-extended", b'a LIST (SPECIAL-USE) "" ("*" "%") RETURN (CHILDREN STATUS (MESSAGES))',
     c.List("a", "", ("*", "%"), frozenset({"SPECIAL-USE"}), frozenset({"CHILDREN", "STATUS"}),
            ("MESSAGES",))),
    ("lsub", b'a LSUB "" *', c.Lsub("a", "", "*")),
    ("status", b"a STATUS INBOX (MESSAGES UNSEEN HIGHESTMODSEQ)",
     c.Status("a", "INBOX", ("MESSAGES", "UNSEEN", "HIGHESTMODSEQ"))),
    ("append-plus", b"a APPEND INBOX (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {3+}\r\nhey",
     c.Append("a", "INBOX", ("\\Seen",),
              datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(-timedelta(hours=8))), b"hey")),
    ("append-bare", b"a APPEND INBOX {2+}\r\nhi", c.Append("a", "INBOX", (), None, b"hi")),
    ("check", b"a CHECK", s.Check("a")),
    ("close", b"a CLOSE", s.Close("a")),
    ("unselect", b"a UNSELECT", s.Unselect("a")),
    ("expunge", b"a EXPUNGE", s.Expunge("a")),
    ("uid-expunge", b"a UID EXPUNGE 3:5", s.Expunge("a", SS("3:5"), True)),
    ("namespace", b"a NAMESPACE", c.Namespace("a")),
    ("id-nil", b"a ID NIL", c.Id("a", None)),
    ("id", b'a ID ("name" "x" "version" NIL)', c.Id("a", (("name", "x"), ("version", None)))),
    ("enable", b"a ENABLE CONDSTORE utf8=accept", c.Enable("a", ("CONDSTORE", "UTF8=ACCEPT"))),
    ("idle", b"a IDLE", c.Idle("a")),
    ("fetch-fast", b"a FETCH 1:* FAST",
     s.Fetch("a", SS("1:*"), (FetchAttr("FLAGS"), FetchAttr("INTERNALDATE"),
                             FetchAttr("RFC822.SIZE")))),
    ("fetch-body-peek-partial", b"a FETCH 2 BODY.PEEK[1.2.MIME]<10.20>",
     s.Fetch("a", SS("2"), (FetchAttr("BODY", Section((1, 2), "MIME"), True, (10, 20)),))),
    ("fetch-header-fields-not", b"a FETCH 2 (BODY[HEADER.FIELDS.NOT (Received)] ENVELOPE)",
     s.Fetch("a", SS("2"), (FetchAttr("BODY", Section((), "HEADER.FIELDS.NOT", ("RECEIVED",))),
                           FetchAttr("ENVELOPE")))),
    ("fetch-changedsince", b"a FETCH 1 (FLAGS) (CHANGEDSINCE 12345)",
     s.Fetch("a", SS("1"), (FetchAttr("FLAGS"), FetchAttr("MODSEQ")), 12345)),
    ("uid-fetch-adds-uid", b"a UID FETCH 1,3 BODY[]",
     s.Fetch("a", SS("1,3"), (FetchAttr("UID"), FetchAttr("BODY", Section())), None, True)),
    ("fetch-binary", b"a FETCH 1 BINARY.PEEK[1]",
     s.Fetch("a", SS("1"), (FetchAttr("BINARY", Section((1,)), True),))),
    ("store-add-silent", b"a STORE 1:2 +FLAGS.SILENT (\\Seen \\flagged)",
     s.Store("a", SS("1:2"), "add", True, ("\\Seen", "\\Flagged"))),
    ("store-bare-flags", b"a STORE 1 -FLAGS \\Deleted $Label1",
     s.Store("a", SS("1"), "remove", False, ("\\Deleted", "$Label1"))),
    ("store-unchangedsince", b"a UID STORE 5 (UNCHANGEDSINCE 7) FLAGS ()",
     s.Store("a", SS("5"), "replace", False, (), 7, True)),
    ("copy", b"a COPY 1:3 Archive", s.Copy("a", SS("1:3"), "Archive")),
    ("uid-move", b"a UID MOVE 4:* Trash", s.Move("a", SS("4:*"), "Trash", True)),
    ("search-simple", b"a SEARCH UNSEEN", s.Search("a", None, SearchFlag("\\Seen", False))),
    ("search-charset", b"a UID SEARCH CHARSET UTF-8 SUBJECT {2+}\r\n\xc3\xa9",
     s.Search("a", "UTF-8", SearchHeader("subject", b"\xc3\xa9"), True)),
    ("create-utf8", b'a CREATE "caf\xc3\xa9"', c.Create("a", "caf\u00e9")),  # RFC 6855
    ("append-utf8", b"a APPEND INBOX UTF8 (~{2+}\r\nhi)", c.Append("a", "INBOX", message=b"hi")),
    ("multiappend", b"a APPEND INBOX {1+}\r\na (\\Seen) {1+}\r\nb",
     c.Append("a", "INBOX", message=b"a", more=(((("\\Seen",), None, b"b")),))),
    ("esearch", b"a UID SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 ALL",
     s.Search("a", "UTF-8", SearchAll(), True, ("MIN", "COUNT", "SAVE"))),
    ("esearch-empty", b"a SEARCH RETURN () $", s.Search(
        "a", None, SearchSet(SeqSet((), saved=True), False), False, ("ALL",))),
    ("fetch-saved", b"a FETCH $ FLAGS", s.Fetch("a", SeqSet((), saved=True),
                                                 (FetchAttr("FLAGS"),))),
    ("sort", b"a UID SORT (REVERSE ARRIVAL displayfrom) utf-8 SEEN",
     s.Sort("a", (("ARRIVAL", True), ("DISPLAYFROM", False)), "utf-8",
            SearchFlag("\\Seen", True), True)),
    ("esort", b"a SORT RETURN (COUNT) (SIZE) UTF-8 ALL",
     s.Sort("a", (("SIZE", False),), "UTF-8", SearchAll(), False, ("COUNT",))),
    ("thread", b"a THREAD REFERENCES US-ASCII ALL",
     s.Thread("a", "REFERENCES", "US-ASCII", SearchAll())),
    ("search-all-keys",
     b"a SEARCH OR ANSWERED DELETED NOT (DRAFT FLAGGED) NEW OLD RECENT SEEN KEYWORD $x "
     b"UNKEYWORD $y BEFORE 1-Feb-2024 ON 2-Feb-2024 SINCE \"3-Feb-2024\" SENTBEFORE 1-Jan-2020 "
     b"SENTON 1-Jan-2020 SENTSINCE 1-Jan-2020 BCC a CC b FROM c TO d HEADER X-Y z BODY e TEXT f "
     b"LARGER 10 SMALLER 20 UID 1:5 2,4 UNANSWERED UNDELETED UNDRAFT UNFLAGGED MODSEQ 9 ALL",
     None),
]


@pytest.mark.parametrize(("line", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_commands(line: bytes, expected: object) -> None:
    got = parse_command(line + b"\r\n")
    assert not isinstance(got, Invalid), got
    if expected is not None:
        assert got == expected


def test_search_all_keys_tree() -> None:
    cmd = parse_command(VALID[-1][1] + b"\r\n")
    assert isinstance(cmd, s.Search) and isinstance(cmd.key, SearchAnd)
    keys = cmd.key.keys
    assert keys[0] == SearchOr(SearchFlag("\\Answered", True), SearchFlag("\\Deleted", True))
    assert keys[1] == SearchNot(SearchAnd((SearchFlag("\\Draft", True),
                                           SearchFlag("\\Flagged", True))))
    assert SearchDate("sent", "on", datetime(2020, 1, 1).date()) in keys
    assert SearchText(True, b"e") in keys and SearchText(False, b"f") in keys
    assert SearchSize(True, 10) in keys and SearchSet(SS("1:5"), True) in keys
    assert SearchSet(SS("2,4"), False) in keys and SearchModSeq(9) in keys


INVALID = [
    ("no-tag", b" NOOP", None, "tag"),
    ("unknown-verb", b"a FROB", "a", "unknown command"),
    ("extra-args", b"a NOOP now", "a", "extra"),
    ("login-missing-password", b"a LOGIN bob", "a", "space"),
    ("bad-seqset", b"a FETCH 0 FLAGS", "a", "sequence set"),
    ("bad-fetch-item", b"a FETCH 1 (FLAGS BOGUS)", "a", "fetch item"),
    ("mime-without-part", b"a FETCH 1 BODY[MIME]", "a", "MIME"),
    ("store-recent", b"a STORE 1 +FLAGS (\\Recent)", "a", "Recent"),
    ("bad-search-key", b"a SEARCH FOO", "a", "search key"),
    ("unterminated-quote", b'a LOGIN "bob', "a", "quoted"),
    ("bad-date", b"a SEARCH SINCE 31-Feb-2024", "a", "date"),
    ("bad-base64", b"a AUTHENTICATE PLAIN !!!", "a", "base64"),
    ("bad-status-item", b"a STATUS INBOX (SIZES)", "a", "status item"),
    ("uid-unknown", b"a UID NOOP", "a", "UID"),
    ("deep-search", b"a SEARCH " + b"NOT " * 100 + b"ALL", "a", "deep"),
    ("bad-return", b"a SEARCH RETURN (NOPE) ALL", "a", "return option"),
    ("sort-no-keys", b"a SORT () UTF-8 ALL", "a", "sort key"),
    ("sort-bad-key", b"a SORT (REVERSE) UTF-8 ALL", "a", "space"),
    ("sort-no-charset", b"a SORT (DATE) ALL", "a", ""),
    ("thread-unknown", b"a THREAD FOO UTF-8 ALL", "a", "thread algorithm"),
    ("vanished-not-uid", b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "a", "VANISHED"),
    ("vanished-no-changedsince", b"a UID FETCH 1 FLAGS (VANISHED)", "a", "VANISHED"),
    ("qresync-star-known", b"a SELECT INBOX (QRESYNC (1 2 1:*))", "a", "known-uids"),
    ("catenate-bad-part", b'a APPEND x CATENATE (FILE "a")', "a", "TEXT or URL"),
]


@pytest.mark.parametrize(("line", "tag", "needle"), [v[1:] for v in INVALID],
                         ids=[v[0] for v in INVALID])
def test_invalid_commands(line: bytes, tag: str | None, needle: str) -> None:
    got = parse_command(line + b"\r\n")
    assert isinstance(got, Invalid)
    assert got.tag == tag
    assert needle.lower() in got.text.lower()


@pytest.mark.parametrize("line", [b"a SELECT &Jjo", b"a CREATE \"x&b\"", b"a RENAME x &AGE-",
                                  b"a COPY 1 &"])
def test_invalid_mutf7_name_parses_for_a_no(line: bytes) -> None:
    """RFC 3501 5.1.3: a bad mUTF-7 name is not a syntax error (the session answers NO)."""
    got = parse_command(line + b"\r\n")
    assert not isinstance(got, Invalid)
    assert any(isinstance(v, InvalidName) for v in vars(got).values())


def test_sync_literal_asks_for_continuation() -> None:
    r = Receiver()
    assert r.feed(b"a1 LOGIN {3}\r\n") == [NeedLiteral(3, "a1")]
    assert r.feed(b"bo") == []
    assert r.feed(b"b {2}\r\n") == [NeedLiteral(2, "a1")]
    assert r.feed(b"pw\r\na2 NOOP\r\n") == [c.Login("a1", "bob", "pw"), c.Noop("a2")]


def test_nonsync_literal_needs_no_continuation() -> None:
    r = Receiver()
    assert r.feed(b"a APPEND INBOX {5+}\r\nhello\r\n") == [c.Append("a", "INBOX", message=b"hello")]


def test_oversized_sync_literal_refused_and_resynchronised() -> None:
    r = Receiver(max_literal=10)
    out = r.feed(b"a APPEND INBOX {11}\r\nb NOOP\r\n")
    assert out == [Invalid("a", "literal too large"), c.Noop("b")]


def test_oversized_nonsync_literal_is_skipped() -> None:
    r = Receiver(max_literal=10)
    out = r.feed(b"a APPEND INBOX {20+}\r\n" + b"c NOOP\r\n" * 2 + b"xxxx\r\nb NOOP\r\n")
    assert out == [Invalid("a", "literal too large"), c.Noop("b")]
    assert r.buffered == 0


def test_long_line_refused_without_buffering() -> None:
    r = Receiver(max_line=64)
    out = r.feed(b"a LOGIN " + b"x" * 100)
    assert out == [Invalid("a", "line too long")]
    assert r.buffered == 0
    assert r.feed(b"y" * 1000) == []
    assert r.feed(b"\r\nb NOOP\r\n") == [c.Noop("b")]


def test_long_line_ending_in_nonsync_literal_skips_literal() -> None:
    r = Receiver(max_line=64)
    out = r.feed(b"a APPEND " + b"x" * 100 + b" {9+}\r\nc LOGOUT\r\nb NOOP\r\n")
    assert out == [Invalid("a", "line too long"), c.Noop("b")]


def test_idle_then_done() -> None:
    r = Receiver()
    assert r.feed(b"a IDLE\r\nDONE\r\nb NOOP\r\n") == [c.Idle("a")]
    assert r.paused
    assert r.start_idle("a") == [IdleDone("a"), c.Noop("b")]


def test_idle_with_garbage_is_invalid() -> None:
    r = Receiver()
    r.feed(b"a IDLE\r\n")
    assert r.start_idle("a") == []
    assert r.feed(b"NOOP\r\n") == [Invalid("a", "expected DONE")]


def test_authenticate_continuation_lines() -> None:
    r = Receiver()
    assert r.feed(b"a AUTHENTICATE PLAIN\r\nAGJvYgBwdw==\r\n") == [c.Authenticate("a", "PLAIN")]
    assert r.expect_continuation() == [ContinuationLine(b"AGJvYgBwdw==")]
    assert r.paused
    assert r.resume() == []
    r.feed(b"b AUTHENTICATE PLAIN\r\n")
    r.expect_continuation()
    (line,) = r.feed(b"*\r\n")
    assert isinstance(line, ContinuationLine) and line.cancelled


def test_starttls_drops_pipelined_plaintext() -> None:
    r = Receiver()
    assert r.feed(b"a STARTTLS\r\nb LOGIN evil injected\r\n") == [c.StartTLS("a")]
    assert r.discard_buffered() > 0
    assert r.feed(b"c NOOP\r\n") == [c.Noop("c")]


def test_refused_idle_resumes_commands() -> None:
    r = Receiver()
    r.feed(b"a IDLE\r\nb NOOP\r\n")
    assert r.resume() == [c.Noop("b")]


def test_login_repr_hides_password() -> None:
    assert "secret" not in repr(c.Login("a", "bob", "secret"))
