"""FETCH ENVELOPE / BODY / BODYSTRUCTURE and sections over a real IMAP session, every reply
parsed with the strict RFC 3501 section 9 checker (tests/imap_unit/grammar.py)."""

from __future__ import annotations

import json

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.models import Message
from tests.imap_unit.grammar import Body, check_fetch_lines
from tests.imap_unit.test_message import INNER, NESTED, TOP_RFC822

from .conftest import Imap, open_raw
from .test_qa_regressions import UTF8_HEADERS

FOLDED = (b"From: a@x.example, b@x.example\r\nTo: list: c@x.example, d@x.example;\r\n"
          b"Content-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\n"
          b"--foo bar\r\nContent-Type: text/plain;\r\n\r\none\r\n--foo bar\r\n--foo bar\r\n\r\n"
          b"three\r\n--foo bar--\r\n")
CORPUS = [NESTED, TOP_RFC822, FOLDED, UTF8_HEADERS]


async def _append_all(imap: Imap) -> None:
    for raw in CORPUS:
        await imap.services.store.append(imap.account_id, "INBOX", raw)


async def test_structure_replies_obey_the_grammar(imap: Imap) -> None:
    await _append_all(imap)
    c = await open_raw(imap)
    await c.cmd("EXAMINE INBOX")
    res = await c.cmd("FETCH 1:* (ENVELOPE BODY BODYSTRUCTURE)")
    assert res[-1].split()[1] == b"OK", res
    items = check_fetch_lines(res)  # was: "(...) (...)" between parts and addresses
    assert len(items) == len(CORPUS)
    folded = items[2]
    bs = folded[b"BODYSTRUCTURE"]
    assert isinstance(bs, Body) and len(bs.parts) == 3  # unfolded boundary, empty part 2
    assert bs.params == [(b"boundary", b"foo bar")]
    assert bs.parts[0].params == [(b"charset", b"us-ascii")]  # RFC 2045 5.2 default
    env = folded[b"ENVELOPE"]
    assert isinstance(env, list) and len(env[2]) == 2 and len(env[5]) == 4
    await c.close()


async def test_message_rfc822_sections(imap: Imap) -> None:
    await _append_all(imap)
    c = await open_raw(imap)
    await c.cmd("EXAMINE INBOX")
    res = await c.cmd("FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.HEADER] BODY.PEEK[1.MIME] "
                      "BODY.PEEK[1.TEXT] BODY.PEEK[1.2.HEADER] BODY.PEEK[1.2.1] BODY.PEEK[1.9])")
    (got,) = check_fetch_lines(res)
    header = INNER[:INNER.index(b"\r\n\r\n") + 4]
    assert got[b"BODY[1]"] == INNER  # was: the inner body only
    assert got[b"BODY[1.HEADER]"] == header  # was: NIL
    assert got[b"BODY[1.MIME]"] == b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n"
    assert got[b"BODY[1.TEXT]"] == INNER[len(header):]
    assert got[b"BODY[1.2.HEADER]"] == b"Subject: deep\r\n\r\n"
    assert got[b"BODY[1.2.1]"] == b"deep body"
    assert got[b"BODY[1.9]"] is None
    await c.close()


async def test_summaries_cached_in_the_older_format_are_recomputed(imap: Imap) -> None:
    await imap.services.store.append(imap.account_id, "INBOX", NESTED)
    c = await open_raw(imap)
    await c.cmd("EXAMINE INBOX")
    check_fetch_lines(await c.cmd("FETCH 1 (BODYSTRUCTURE)"))  # computes and caches
    keys = imap.services.store.keys
    async with imap.services.db.session() as s:
        row = (await s.execute(select(Message))).scalars().one()
    aad = f"imapmeta:{imap.account_id}:{row.blob_key}".encode()
    assert row.meta_enc is not None
    meta = json.loads(await keys.unseal(imap.account_id, row.meta_enc, aad))
    # What version 2 cached: the same summary with a space between parts and addresses.
    meta["s"]["v"] = 2
    for k in ("bs", "body", "env"):
        meta["s"][k] = meta["s"][k].replace(")(", ") (")
    old = await keys.seal(imap.account_id, json.dumps(meta).encode(), aad)

    async def put(s: AsyncSession) -> None:
        await s.execute(update(Message).where(Message.id == row.id).values(meta_enc=old))

    await imap.services.db.write(put)
    res = await c.cmd("FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)")
    check_fetch_lines(res)  # the stale entry was not served
    await c.close()
