"""Regressions found by testing the running server with real clients (QA pass)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap.message import MessageSummary
from mailserver.imap.rawheaders import header_text
from tests.conftest import DOMAIN

from .conftest import Imap, open_raw

# RFC 6532: UTF-8 straight in the header fields, as swaks, mutt and many scripts send it.
UTF8_HEADERS = (
    "From: Inès Petit <ines.petit@" + DOMAIN + ">\r\n"
    "To: dr.martin@" + DOMAIN + "\r\n"
    "Subject: Rendez-vous de contrôle\r\n"
    "Message-ID: <utf8@" + DOMAIN + ">\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
    "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour\r\n"
    "--B\r\nContent-Type: application/pdf; name=\"résumé.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"résumé.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n"
).encode()


async def _append(imap: Imap, msg: bytes) -> None:
    raw = await open_raw(imap)
    await raw.write(b"a1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert (await raw.until("a1"))[-1].startswith(b"a1 OK")
    await raw.close()


async def test_envelope_and_bodystructure_keep_8bit_header_octets(imap: Imap) -> None:
    await _append(imap, UTF8_HEADERS)
    raw = await open_raw(imap)
    await raw.cmd("SELECT INBOX")
    res = b"".join(await raw.cmd("FETCH 1 (ENVELOPE BODYSTRUCTURE)"))
    assert "\ufffd".encode() not in res  # was: every 8-bit octet replaced by U+FFFD
    assert "Rendez-vous de contrôle".encode() in res
    assert "Inès Petit".encode() in res
    assert res.count("résumé.pdf".encode()) == 2  # name= and filename= parameters
    # 8-bit data cannot be a quoted string (RFC 3501 4.3): it must come as a literal.
    assert b'"Rendez-vous' not in res
    await raw.close()


async def test_search_matches_8bit_subject_and_from(imap: Imap) -> None:
    await _append(imap, UTF8_HEADERS)
    raw = await open_raw(imap)
    await raw.cmd("SELECT INBOX")
    for key, word in (("SUBJECT", "CONTRÔLE"), ("FROM", "inès"), ("HEADER SUBJECT", "contrôle"),
                      ("TEXT", "contrôle")):
        data = word.encode()
        res = await raw.cmd(b"SEARCH CHARSET UTF-8 %s {%d+}\r\n" % (key.encode(), len(data))
                            + data)
        assert res[0] == b"* SEARCH 1\r\n", (key, res)
    await raw.close()


def test_stale_cached_summaries_are_recomputed() -> None:
    summary = MessageSummary.from_bytes(UTF8_HEADERS)
    assert MessageSummary.from_json(summary.to_json()) == summary
    old = json.loads(summary.to_json())
    old["v"] = 1  # summaries cached before the 8-bit fix carry U+FFFD: never reuse them
    try:
        MessageSummary.from_json(json.dumps(old).encode())
    except ValueError:
        pass
    else:
        raise AssertionError("a version 1 summary was accepted")


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_header_text_round_trips_raw_utf8(text: str) -> None:
    # What the parser holds for raw header octets: the UTF-8 bytes as surrogate escapes.
    escaped = text.encode("utf-8").decode("ascii", "surrogateescape")
    assert header_text(escaped) == text or "=?" in text



async def test_wildcards_are_refused_in_new_mailbox_names(imap: Imap) -> None:
    raw = await open_raw(imap)
    for cmd in ('CREATE "a%b"', 'CREATE "a*b"'):
        res = await raw.cmd(cmd)
        assert res[-1].split()[1:3] == [b"NO", b"[CANNOT]"], res
    assert (await raw.cmd("CREATE Plain"))[-1].split()[1] == b"OK"
    res = await raw.cmd('RENAME Plain "P*"')
    assert res[-1].split()[1:3] == [b"NO", b"[CANNOT]"], res
    listing = b"".join(await raw.cmd('LIST "" "*"'))
    assert b"a%b" not in listing and b"a*b" not in listing and b"P*" not in listing
    await raw.close()


async def test_rename_under_itself_is_refused_and_keeps_the_tree(imap: Imap) -> None:
    raw = await open_raw(imap)
    await raw.cmd("CREATE Zed/child")
    res = await raw.cmd("RENAME Zed Zed/child/sub")
    assert res[-1].split()[1:3] == [b"NO", b"[CANNOT]"], res
    listing = b"".join(await raw.cmd('LIST "" "Zed*"'))
    assert b'"/" Zed\r\n' in listing and b'"/" Zed/child\r\n' in listing
    await raw.close()


async def test_rename_creates_the_superiors_of_the_new_name(imap: Imap) -> None:
    raw = await open_raw(imap)
    await raw.cmd("CREATE Old")
    assert (await raw.cmd("RENAME Old New/Deep/Name"))[-1].split()[1] == b"OK"
    top = b"".join(await raw.cmd('LIST "" "%"'))
    assert b'(\\HasChildren) "/" New\r\n' in top  # reachable by a hierarchical client
    mid = b"".join(await raw.cmd('LIST "" "New/%"'))
    assert b'"/" New/Deep\r\n' in mid
    assert b"Old" not in b"".join(await raw.cmd('LIST "" "*"'))
    await raw.close()
