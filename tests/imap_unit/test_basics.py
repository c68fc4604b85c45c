"""seqset, modified UTF-7 and encoder examples."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailserver.imap.encoder import (
    Atom,
    ResponseCode,
    astring,
    code_appenduid,
    code_copyuid,
    encode_value,
    fetch,
    format_datetime,
    mailbox,
    tagged,
    untagged,
)
from mailserver.imap.seqset import SeqSet, format_uid_set
from mailserver.imap.utf7 import decode_mutf7, encode_mutf7


@pytest.mark.parametrize(("text", "maximum", "expected"), [
    ("1:3,5", 10, [1, 2, 3, 5]),
    ("4:2", 10, [2, 3, 4]),
    ("8:*", 10, [8, 9, 10]),
    ("20:*", 10, [10]),  # RFC 3501 6.4.8: n:* with n > max still names max
    ("*", 0, []),
    ("1,1,2", 5, [1, 2]),
], ids=["list", "reversed", "star", "star-below", "empty-mailbox", "dupes"])
def test_seqset_iter(text: str, maximum: int, expected: list[int]) -> None:
    assert list(SeqSet.parse(text).iter(maximum)) == expected


def test_seqset_bad_and_exceeds() -> None:
    for bad in ("", "0", "1:", "a", "1,,2", "4294967296"):
        with pytest.raises(ValueError):
            SeqSet.parse(bad)
    assert SeqSet.parse("1:12").exceeds(10) and not SeqSet.parse("1:*").exceeds(10)
    assert SeqSet.parse("5:*").select([1, 5, 9], 9) == [5, 9]
    assert str(SeqSet.parse("1:*,3")) == "1:*,3"


def test_uid_sets() -> None:
    assert format_uid_set([5, 3, 4, 9]) == "3:5,9"
    assert code_appenduid(38505, [3955]).encode() == b"[APPENDUID 38505 3955]"
    assert code_copyuid(38505, [304, 319, 320], [3956, 3957, 3958]).encode() == (
        b"[COPYUID 38505 304,319:320 3956:3958]")


@pytest.mark.parametrize(("name", "wire"), [
    ("INBOX", b"INBOX"), ("Boîte d'envoi", b"Bo&AO4-te d'envoi"), ("A&B", b"A&-B"),
    ("日本語", b"&ZeVnLIqe-"), ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
], ids=["ascii", "latin", "ampersand", "cjk", "rfc3501-example"])
def test_mutf7(name: str, wire: bytes) -> None:
    assert encode_mutf7(name) == wire
    assert decode_mutf7(wire) == name


@pytest.mark.parametrize("bad", [b"&Jjo", b"&AGE-", b"caf\xe9", b"&A-"],
                         ids=["unterminated", "ascii-shifted", "8bit", "bad-base64"])
def test_mutf7_rejects(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_mutf7(bad)


def test_responses() -> None:
    assert tagged("a1", "NO", "no such mailbox", ResponseCode.NONEXISTENT) == (
        b"a1 NO [NONEXISTENT] no such mailbox\r\n")
    assert tagged("a1", "OK", "done\r\n* injected") == b"a1 OK done  * injected\r\n"
    assert untagged("OK", "ready", code=ResponseCode.uidvalidity(3)) == (
        b"* OK [UIDVALIDITY 3] ready\r\n")
    assert untagged(3, "EXISTS") == b"* 3 EXISTS\r\n"
    assert ResponseCode.READ_ONLY.encode() == b"[READ-ONLY]"
    assert ResponseCode.badcharset(["UTF-8"]).encode() == b"[BADCHARSET (UTF-8)]"
    assert astring("NIL") == b'"NIL"' and astring("abc") == b"abc" and astring("") == b'""'
    assert mailbox("Boîte") == b"Bo&AO4-te"
    assert encode_value([Atom("\\Seen"), None, 5, "a b", b"\xc3\xa9"]) == (
        b'(\\Seen NIL 5 "a b" {2}\r\n\xc3\xa9)')
    assert fetch(4, [("UID", 9), ("FLAGS", [Atom("\\Seen")])]) == (
        b"* 4 FETCH (UID 9 FLAGS (\\Seen))\r\n")
    when = datetime(1996, 7, 7, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    assert format_datetime(when) == b'" 7-Jul-1996 02:44:25 -0700"'
