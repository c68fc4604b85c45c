"""FETCH planning and the cached summary format: parse only what an item needs, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailserver.imap import encoder as enc
from mailserver.imap.fetching import FetchPlan, fetch_items, flags_line_maker
from mailserver.imap.fetchspec import FetchAttr, Section
from mailserver.imap.meta import Meta
from tests.imap.conftest import message

MULTI = (b"From: a@b.test\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
         b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n"
         b"Content-Type: application/pdf\r\n\r\nAAAA\r\n--b--\r\n")


def test_whole_message_items_need_no_summary() -> None:
    for attr in (FetchAttr("BODY", Section(), True), FetchAttr("BODY", Section()),
                 FetchAttr("RFC822")):
        plan = FetchPlan.of((attr,))
        assert plan.needs_raw and not plan.needs_meta
    for attr in (FetchAttr("RFC822.TEXT"), FetchAttr("BODY", Section((1,)), True),
                 FetchAttr("BODY", Section((), "TEXT"), True), FetchAttr("ENVELOPE")):
        assert FetchPlan.of((attr,)).needs_meta


def test_whole_message_is_served_from_raw_alone() -> None:
    raw = message(3)
    plan = FetchPlan.of((FetchAttr("UID"), FetchAttr("BODY", Section(), True),
                         FetchAttr("BODY", Section(), True, (0, 10)), FetchAttr("RFC822")))
    items = fetch_items(plan, uid=7, flags="", recent=False,
                        internaldate=datetime(2026, 3, 2, tzinfo=UTC), size=len(raw), modseq=1,
                        summary=None, header=None, raw=raw, add_flags=False, add_modseq=False)
    out = enc.fetch(1, items)
    assert out.count(b"{%d}\r\n" % len(raw) + raw) == 2
    assert b"BODY[]<0> {10}\r\n" + raw[:10] in out


@given(st.binary(max_size=400))
def test_meta_json_round_trip_and_older_form(body: bytes) -> None:
    raw = MULTI + body
    meta = Meta.of(raw)
    assert Meta.from_json(meta.to_json()) == meta
    data = json.loads(meta.to_json())
    assert isinstance(data["s"], dict)  # nested: one json.loads per message
    older = json.dumps({"s": meta.summary.to_json().decode(),
                        "h": meta.header.decode("latin-1")}).encode()
    old = Meta.from_json(older)  # no sort keys then: computed from the header when asked
    assert (old.summary, old.header, old.keys, old.fields) == (meta.summary, meta.header, None,
                                                               meta.fields)


@given(names=st.lists(st.sampled_from(["UID", "FLAGS", "MODSEQ"]), min_size=1, max_size=4),
       flags=st.sampled_from(["", "\\Seen", "$Label1 \\Answered \\Seen", "\\Deleted"]),
       recent=st.booleans(), condstore=st.booleans(), seq=st.integers(1, 10 ** 6),
       uid=st.integers(1, 2 ** 32 - 1), modseq=st.integers(1, 2 ** 63 - 1))
def test_flags_lines_are_the_general_fetch_response(names: list[str], flags: str, recent: bool,
                                                    condstore: bool, seq: int, uid: int,
                                                    modseq: int) -> None:
    plan = FetchPlan.of(tuple(FetchAttr(n) for n in names))
    line = flags_line_maker(plan, condstore)
    assert line is not None
    items = fetch_items(plan, uid=uid, flags=flags, recent=recent, internaldate=None, size=0,
                        modseq=modseq, summary=None, header=None, raw=None, add_flags=False,
                        add_modseq=condstore)
    assert line(seq, uid, flags, recent, modseq) == enc.fetch(seq, items)
    assert line(seq, uid, flags, recent, modseq) == enc.fetch(seq, items)  # formatted once


def test_only_row_items_take_the_flags_lines() -> None:
    for items in ((FetchAttr("FLAGS"), FetchAttr("INTERNALDATE")), (FetchAttr("ENVELOPE"),),
                  (FetchAttr("UID"), FetchAttr("BODY", Section(), True)), ()):
        assert flags_line_maker(FetchPlan.of(items), False) is None
