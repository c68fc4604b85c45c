"""Every SEARCH key and every FETCH data item, over the real server (RFC 3501 6.4.4, 6.4.5)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tests.conftest import DOMAIN

from .conftest import Imap, Raw, open_raw

M1 = (f"From: Alice <alice@{DOMAIN}>\r\nTo: bob@{DOMAIN}\r\nCc: carol@{DOMAIN}\r\n"
      f"Bcc: dan@{DOMAIN}\r\nSubject: Bilan sanguin\r\nDate: Mon, 2 Feb 2026 09:00:00 +0000\r\n"
      f"X-Priority: 1\r\nMessage-ID: <k1@{DOMAIN}>\r\n\r\nHemoglobine normale.\r\n").encode()
M2 = (f"From: =?utf-8?q?Z=C3=A9lie?= <zelie@{DOMAIN}>\r\nTo: eve@{DOMAIN}\r\n"
      f"Subject: =?utf-8?q?Radiographie_du_f=C3=A9mur?=\r\nDate: Tue, 3 Mar 2026 09:00:00 +0000\r\n"
      f"Message-ID: <k2@{DOMAIN}>\r\nContent-Type: text/plain; charset=utf-8\r\n"
      f"Content-Transfer-Encoding: quoted-printable\r\n\r\nFracture consolid=C3=A9e.\r\n"
      + "x" * 2000 + "\r\n").encode()
M3 = (f"From: Bob <bob@{DOMAIN}>\r\nTo: alice@{DOMAIN}\r\nSubject: Re: Bilan sanguin\r\n"
      f"Date: Wed, 4 Mar 2026 09:00:00 +0000\r\nMessage-ID: <k3@{DOMAIN}>\r\n\r\nMerci.\r\n"
      ).encode()


@pytest.fixture
async def session(imap: Imap) -> AsyncIterator[Raw]:
    st = imap.services.store
    await st.append(imap.account_id, "INBOX", M1, flags=["\\Seen", "\\Answered", "$Urgent"],
                    internaldate=datetime(2026, 2, 2, 10, tzinfo=UTC))
    await st.append(imap.account_id, "INBOX", M2, flags=["\\Flagged", "\\Draft"],
                    internaldate=datetime(2026, 3, 3, 10, tzinfo=UTC))
    c = await open_raw(imap)
    await c.cmd("SELECT INBOX")
    # M1 and M2 are \Recent to the first SELECT; M3 arrives while selected: this session
    # sees it as \Recent too (RFC 3501 2.3.2).
    await st.append(imap.account_id, "INBOX", M3, flags=["\\Deleted", "\\Seen"],
                    internaldate=datetime(2026, 3, 4, 10, tzinfo=UTC))
    await c.cmd("NOOP")
    yield c
    await c.close()


SEARCHES = [
    ("ALL", "1 2 3"), ("ANSWERED", "1"), ("UNANSWERED", "2 3"), ("DELETED", "3"),
    ("UNDELETED", "1 2"), ("DRAFT", "2"), ("UNDRAFT", "1 3"), ("FLAGGED", "2"),
    ("UNFLAGGED", "1 3"), ("SEEN", "1 3"), ("UNSEEN", "2"), ("KEYWORD $Urgent", "1"),
    ("UNKEYWORD $Urgent", "2 3"), ("RECENT", "1 2 3"), ("NEW", "2"), ("OLD", ""),
    ("BCC dan", "1"), ("CC carol", "1"), ("FROM zélie", "2"), ("TO alice", "3"),
    ("SUBJECT bilan", "1 3"), ("SUBJECT fémur", "2"), ('HEADER X-Priority ""', "1"),
    ("HEADER Message-ID k2", "2"), ("BODY consolidée", "2"), ("BODY Merci", "3"),
    ("TEXT hemoglobine", "1"), ("TEXT alice", "1 3"), ("LARGER 1000", "2"),
    ("SMALLER 1000", "1 3"), ("BEFORE 3-Mar-2026", "1"), ("ON 3-Mar-2026", "2"),
    ("SINCE 3-Mar-2026", "2 3"), ("SENTBEFORE 3-Mar-2026", "1"), ("SENTON 4-Mar-2026", "3"),
    ("SENTSINCE 3-Mar-2026", "2 3"), ("2:*", "2 3"), ("UID 1,3", "1 3"),
    ("NOT SEEN", "2"), ("OR FLAGGED DELETED", "2 3"), ("(SEEN NOT DELETED)", "1"),
    ("SEEN SUBJECT bilan", "1 3"), ("OR (FROM alice) (TO alice)", "1 3"),
]


@pytest.mark.parametrize(("criteria", "expected"), SEARCHES, ids=[s[0] for s in SEARCHES])
async def test_search_key(session: Raw, criteria: str, expected: str) -> None:
    if criteria.isascii():
        await session.write(b"s1 SEARCH " + criteria.encode() + b"\r\n")
    else:  # the non-ASCII string goes as a literal, with its charset (RFC 3501 6.4.4)
        key, _, value = criteria.partition(" ")
        data = value.encode()
        await session.write(b"s1 SEARCH CHARSET UTF-8 %s {%d+}\r\n%s\r\n"
                            % (key.encode(), len(data), data))
    res = await session.until("s1")
    assert res[-1].startswith(b"s1 OK"), res
    assert res[0] == (b"* SEARCH" + (b" " + expected.encode() if expected else b"") + b"\r\n")


FETCHES = [
    ("FLAGS", rb"FLAGS \(\\Draft \\Flagged \\Recent\)"),
    ("UID", rb"UID 2"),
    ("INTERNALDATE", rb'INTERNALDATE " 3-Mar-2026 10:00:00 \+0000"'),
    ("RFC822.SIZE", b"RFC822.SIZE %d" % len(M2)),
    ("ENVELOPE", rb'ENVELOPE \("Tue, 3 Mar 2026 09:00:00 \+0000" "=\?utf-8\?q\?Radio'),
    ("BODY", rb'BODY \("text" "plain" \("charset" "utf-8"\) NIL NIL "QUOTED-PRINTABLE" \d+ 2\)'),
    ("BODYSTRUCTURE", rb'BODYSTRUCTURE \("text" "plain" .* 2 NIL NIL NIL NIL\)'),
    ("RFC822.HEADER", rb"RFC822.HEADER \{\d+\}\r\nFrom: =\?utf-8.*\r\n\r\n\)"),
    ("RFC822.TEXT", rb"RFC822.TEXT \{\d+\}\r\nFracture consolid=C3=A9e"),
    ("RFC822", rb"RFC822 \{%d\}\r\nFrom: " % len(M2)),
    ("BODY.PEEK[]", rb"BODY\[\] \{%d\}" % len(M2)),
    ("BODY.PEEK[1]", rb"BODY\[1\] \{\d+\}\r\nFracture"),
    ("BODY.PEEK[HEADER.FIELDS (Date)]",
     rb"BODY\[HEADER.FIELDS \(DATE\)\] \{40\}\r\nDate: Tue, 3 Mar 2026 09:00:00 \+0000\r\n\r\n\)"),
    ("BODY.PEEK[TEXT]<0.8>", rb"BODY\[TEXT\]<0> \{8\}\r\nFracture\)"),
    ("FAST", rb"FLAGS \(.*\) INTERNALDATE .* RFC822.SIZE \d+\)"),
    ("ALL", rb"FLAGS .* INTERNALDATE .* RFC822.SIZE \d+ ENVELOPE \("),
    ("FULL", rb"ENVELOPE \(.*\) BODY \("),
    ("MODSEQ", rb"MODSEQ \(\d+\)"),
]


@pytest.mark.parametrize(("item", "pattern"), FETCHES, ids=[f[0] for f in FETCHES])
async def test_fetch_item(session: Raw, item: str, pattern: bytes) -> None:
    res = await session.cmd(f"FETCH 2 ({item})" if item not in ("ALL", "FAST", "FULL")
                            else f"FETCH 2 {item}")
    assert res[-1].split()[1] == b"OK", res
    assert re.search(pattern, res[0], re.DOTALL), res[0][:300]
    if item in ("RFC822", "RFC822.TEXT"):  # these set \Seen (RFC 3501 6.4.5)
        assert b"\\Seen" in res[0]
    elif item.startswith("BODY.PEEK"):
        assert b"\\Seen" not in (await session.cmd("FETCH 2 (FLAGS)"))[0]
