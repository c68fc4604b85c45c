"""The response checker itself: RFC examples pass, deviations are caught (tests/imap_unit/
responses.py, hooked into every IMAP test by the ``imap_grammar`` fixture)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap.selected_search import esearch_line
from tests.imap_unit.responses import GrammarError, ResponseStream, check_response

GOOD = [
    b"+ Ready for literal data\r\n",
    b"+ \r\n",
    b"a1 OK [READ-WRITE] SELECT completed\r\n",
    b"a2 NO [TRYCREATE] no such mailbox\r\n",
    b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n",
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen $Label1 \\*)] Limited\r\n",
    b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
    b"a OK [APPENDUID 38505 3955] APPEND completed\r\n",
    b"a OK [APPENDUID 38505 3955:3957,3960] APPEND completed\r\n",
    b"a OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
    b"a OK [MODIFIED 7,9] Conditional STORE failed\r\n",
    b"a NO [BADCHARSET (US-ASCII UTF-8)] charset\r\n",
    b"a NO [UNKNOWN-CTE] cannot decode\r\n",
    b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n",
    b"* ENABLED CONDSTORE\r\n",
    b"* ENABLED\r\n",
    b'* ID ("name" "x" "vendor" NIL)\r\n',
    b'* NAMESPACE (("" "/")) NIL NIL\r\n',
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
    b'* LIST (\\Noselect) "/" ""\r\n',
    b'* LIST (\\HasNoChildren \\Subscribed) "/" INBOX\r\n',
    b'* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
    b'* LIST () "/" {4}\r\nFo o\r\n',
    b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7)\r\n",
    b"* STATUS \"a b\" ()\r\n",
    b"* SEARCH\r\n",
    b"* SEARCH 2 84 882\r\n",
    b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n",
    b"* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n",
    b"* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n",
    b"* ESEARCH (TAG \"A284\") UID MIN 4\r\n",
    b"* ESEARCH (TAG \"A285\") UID\r\n",
    b"* ESEARCH (TAG \"A04\") UID PARTIAL (24000:24500 NIL)\r\n",  # RFC 5267 4.4
    b"* ESEARCH (TAG \"A05\") COUNT 6 PARTIAL (-1:-2 5:6)\r\n",  # RFC 9394 3.1
    b"* ESEARCH (TAG \"C01\") UID ADDTO (1 2733) ADDTO (1 2731:2732)\r\n",  # RFC 5267 4.3.3
    b"* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 32768) ADDTO (0 5,3)\r\n",
    b"* NO [NOUPDATE \"B02\"] Too many contexts\r\n",
    b"* SORT 2 84 882\r\n",
    b"* SORT\r\n",
    b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
    b"* THREAD ((3)(5))\r\n",
    b"* THREAD\r\n",
    b"* 23 EXISTS\r\n",
    b"* 0 RECENT\r\n",
    b"* 44 EXPUNGE\r\n",
    b"* VANISHED (EARLIER) 300:310,405\r\n",
    b"* BYE logging out\r\n",
    b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
    b"RFC822.SIZE 4286 UID 7 MODSEQ (12))\r\n",
    b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n",
    b"* 1 FETCH (BINARY[1] ~{3}\r\na\x00b BINARY.SIZE[2] 40)\r\n",
    b"* 1 FETCH (BINARY[1.2]<0> \"abc\")\r\n",
]

BAD = [
    b"a1 OK\r\n",  # resp-text needs text
    b"a1 MAYBE done\r\n",
    b"* OK [UIDVALIDITY 0] zero\r\n",  # nz-number
    b"* OK [CAPABILITY STARTTLS] no IMAP4rev1\r\n",
    b"* SEARCH 0 2\r\n",
    b"* SEARCH 1  2\r\n",
    b"* SORT 1,2\r\n",
    b"* THREAD (2)((3))\r\n",  # thread-nested needs two lists
    b"* THREAD (2) (3)\r\n",
    b"* ESEARCH MIN 0\r\n",
    b"* ESEARCH COUNT 1 COUNT 2\r\n",
    b"* ESEARCH PARTIAL (1:-2 NIL)\r\n",
    b"* ESEARCH PARTIAL (1:* 1)\r\n",
    b"* ESEARCH ADDTO (1)\r\n",
    b"* ESEARCH REMOVEFROM ()\r\n",
    b"* NO [NOUPDATE B02] unquoted\r\n",
    b"* STATUS INBOX (MESSAGES)\r\n",
    b"* STATUS INBOX (FOO 1)\r\n",
    b'* LIST (\\Noselect) "//" INBOX\r\n',
    b'* LIST (Noselect) "/" INBOX\r\n',
    b"* 0 EXPUNGE\r\n",
    b"* 1 FETCH (UID 1 UID 1)\r\n",
    b"* 1 FETCH (INTERNALDATE \"1996-07-17 02:44:25\")\r\n",
    b"* 1 FETCH (BODY[] {6}\r\nhello)\r\n",
    b"* 1 FETCH (BINARY[1] \"a\" BINARY.SIZE[x] 4)\r\n",
    b"* OK caf\xc3\xa9\r\n",  # text is 7-bit
    b"* FROB 1\r\n",
    b"* 1 FETCH (FLAGS (\\Seen))",  # no CRLF
]


@pytest.mark.parametrize("line", GOOD)
def test_accepts(line: bytes) -> None:
    check_response(line)


@pytest.mark.parametrize("line", BAD)
def test_rejects(line: bytes) -> None:
    with pytest.raises(GrammarError):
        check_response(line)


def test_stream_cuts_responses_at_literals_across_writes() -> None:
    s = ResponseStream()
    s.feed(b"* 1 FETCH (BODY[] {6}\r\nab\r")
    assert s.responses == []
    s.feed(b"\ncd)\r\n* 2 EXPUNGE\r\n* 3 EXPUNGE\r")
    assert s.responses == [b"* 1 FETCH (BODY[] {6}\r\nab\r\ncd)\r\n", b"* 2 EXPUNGE\r\n"]
    s.feed(b"\n* BAD\r\n")
    assert len(s.responses) == 4 and len(s.errors) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10**6), unique=True),  # any order: ESORT keeps sort order
       st.sets(st.sampled_from(["MIN", "MAX", "ALL", "COUNT"])), st.booleans(),
       st.one_of(st.none(), st.integers(1, 2**62)))
def test_esearch_encoder_obeys_the_grammar(nums: list[int], returns: set[str], uid: bool,
                                           modseq: int | None) -> None:
    check_response(esearch_line("A1.x", uid, tuple(returns) or ("ALL",), nums, modseq))
