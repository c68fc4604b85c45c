"""SORT and THREAD (RFC 5256, RFC 5957) as tables: base subjects, sort orders, thread trees."""

from __future__ import annotations

import json
import re
from email.parser import BytesHeaderParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap.meta import KEYS_CODEC, Meta
from mailserver.imap.rawheaders import RAW_POLICY
from mailserver.imap.sortfields import SortFields, base_subject, sort_fields
from mailserver.imap.sorting import (
    Item,
    encode_threads,
    sort_items,
    thread_orderedsubject,
    thread_references,
)
from tests.imap_unit.responses import check_response

BASE_SUBJECTS = [  # RFC 5256 2.1
    ("hello", "hello", False),
    ("Re: hello", "hello", True),
    ("RE: [list] Re: hello (fwd)", "hello", True),
    ("Fwd: Re : a", "a", True),
    ("Fw: a", "a", True),
    ("[fwd: Re: hi]", "hi", True),
    ("Re: [fwd: [x] y]", "y", True),
    ("Re [blob]: z", "z", True),
    ("[PATCH] fix", "fix", False),
    ("[a][b]", "[b]", False),  # a blob stays when nothing would be left
    ("  Re:\t Re:   x  ", "x", True),
    ("Rebuttal: x", "Rebuttal: x", False),
    ("Subject  with\t tabs", "Subject with tabs", False),
    ("(fwd)", "", True),
    ("", "", False),
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def _fields(header: str) -> SortFields:
    return sort_fields(BytesHeaderParser(policy=RAW_POLICY).parsebytes(header.encode()))


def test_fields_from_headers() -> None:
    f = _fields('From: "=?utf-8?q?=C3=89lise_Durand?=" <Elise@x.example>\r\n'
                "To: undisclosed:;, b@y.example\r\nCc: c@z.example (Claire)\r\n"
                "Subject: =?utf-8?q?Re=3A_R=C3=A9sultats?=\r\n"
                "Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <m2@x>\r\n"
                "References: <m0@x>\r\n <m1@x>\r\nIn-Reply-To: <m1@x>\r\n\r\n")
    assert (f.from_addr, f.from_display) == ("Elise", "Élise Durand")
    assert (f.to_addr, f.to_display) == ("b", "b@y.example")  # group markers skipped
    assert f.cc_addr == "c"
    assert (f.subject, f.reply) == ("Résultats", True)
    assert f.date == 1772442000.0
    assert (f.message_id, f.references) == ("<m2@x>", ("<m0@x>", "<m1@x>"))
    g = _fields("In-Reply-To: <p@x> <q@x>\r\nDate: garbage\r\n\r\n")
    assert g.references == ("<p@x>",) and g.date is None and g.from_addr == ""
    assert SortFields.from_list(f.to_list()) == f


def _item(seq: int, *, subject: str = "", date: float | None = None, arrival: float = 0,
          size: int = 0, frm: str = "", mid: str = "", refs: tuple[str, ...] = ()) -> Item:
    base, reply = base_subject(subject)
    return Item(seq, seq + 100, arrival, size,
                SortFields(date, frm, frm.upper(), "", "", "", base, reply, mid, refs))


def _order(items: list[Item], criteria: list[tuple[str, bool]]) -> list[int]:
    return [m.seq for m in sort_items(items, criteria)]


def test_sort_keys_reverse_and_ties() -> None:
    items = [_item(1, subject="Re: b", date=30, size=5, frm="zoe"),
             _item(2, subject="a", date=None, arrival=10, size=5, frm="Alice"),
             _item(3, subject="B", date=20, size=9, frm="alice"),
             _item(4, subject="a", date=20, size=1, frm="bob")]
    assert _order(items, [("SUBJECT", False)]) == [2, 4, 1, 3]  # ties: sequence order
    assert _order(items, [("DATE", False)]) == [2, 3, 4, 1]  # no Date: the arrival date
    assert _order(items, [("SIZE", True), ("DATE", False)]) == [3, 2, 1, 4]
    assert _order(items, [("FROM", False), ("SIZE", True)]) == [3, 2, 4, 1]  # ascii-casemap
    assert _order(items, [("SUBJECT", True), ("SIZE", False)]) == [1, 3, 4, 2]  # REVERSE
    assert _order(items, [("DISPLAYFROM", False)]) == [2, 3, 4, 1]


def _threads(roots: list[object], uid: bool = False) -> bytes:
    return encode_threads(roots, uid=uid)  # type: ignore[arg-type]


def test_orderedsubject() -> None:
    items = [_item(1, subject="b", date=5), _item(2, subject="Re: a", date=3),
             _item(3, subject="a", date=1), _item(4, subject="Re: b", date=6),
             _item(5, subject="re: a", date=2), _item(6, subject="c", date=4)]
    assert _threads(thread_orderedsubject(items)) == b"(3 (5)(2))(6)(1 4)"
    assert _threads(thread_orderedsubject(items), uid=True) == b"(103 (105)(102))(106)(101 104)"


REFERENCES = [
    ("chain", [dict(mid="<1>"), dict(mid="<2>", refs=("<1>",)),
               dict(mid="<3>", refs=("<1>", "<2>"))], b"(1 2 3)"),
    ("siblings", [dict(mid="<1>"), dict(mid="<2>", refs=("<1>",)),
                  dict(mid="<3>", refs=("<1>",))], b"(1 (2)(3))"),
    ("missing-parent", [dict(mid="<2>", refs=("<0>",)), dict(mid="<3>", refs=("<0>",))],
     b"((1)(2))"),
    ("missing-parent-one-child", [dict(mid="<2>", refs=("<0>",))], b"(1)"),
    ("missing-middle", [dict(mid="<1>"), dict(mid="<3>", refs=("<1>", "<2>"))], b"(1 2)"),
    ("loop", [dict(mid="<1>", refs=("<2>",)), dict(mid="<2>", refs=("<1>",))], b"(2 1)"),
    ("self", [dict(mid="<1>", refs=("<1>",))], b"(1)"),
    ("duplicate-id", [dict(mid="<1>"), dict(mid="<1>")], b"(1)(2)"),
    ("subject-merge-reply", [dict(mid="<1>", subject="x"), dict(mid="<2>", subject="Re: x")],
     b"(1 2)"),
    ("subject-merge-equal", [dict(mid="<1>", subject="x"), dict(mid="<2>", subject="x")],
     b"((1)(2))"),
    ("no-subject-no-merge", [dict(mid="<1>"), dict(mid="<2>")], b"(1)(2)"),
]


@pytest.mark.parametrize(("name", "specs", "expected"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_references(name: str, specs: list[dict[str, object]], expected: bytes) -> None:
    items = [_item(i + 1, date=float(i), **spec) for i, spec in enumerate(specs)]  # type: ignore[arg-type]
    assert _threads(thread_references(items)) == expected


def test_references_orders_by_date_and_survives_long_chains() -> None:
    items = [_item(1, mid="<1>", date=50), _item(2, mid="<2>", refs=("<1>",), date=70),
             _item(3, mid="<3>", refs=("<1>",), date=60), _item(4, mid="<4>", date=10)]
    assert _threads(thread_references(items)) == b"(4)(1 (3)(2))"
    refs = tuple(f"<r{i}>" for i in range(5000))  # hostile References: 5000 dummies
    chain = [_item(1, mid="<x>", refs=refs), _item(2, mid="<y>", refs=(*refs, "<x>"))]
    assert _threads(thread_references(chain)) == b"(1 2)"


_IDS = st.sampled_from([f"<{i}>" for i in range(12)] + [""])


@st.composite
def _mailboxes(draw: st.DrawFn) -> list[Item]:
    n = draw(st.integers(0, 25))
    out = []
    for i in range(n):
        refs = tuple(r for r in draw(st.lists(_IDS, max_size=4)) if r)
        subject = draw(st.sampled_from(["a", "Re: a", "b", "Fwd: b", "", "[x] a"]))
        date = draw(st.one_of(st.none(), st.integers(0, 5).map(float)))
        out.append(_item(i + 1, subject=subject, date=date, arrival=float(i),
                         mid=draw(_IDS), refs=refs))
    return out


@settings(max_examples=300, deadline=None)
@given(_mailboxes(), st.booleans())
def test_threads_hold_every_message_once_and_obey_the_grammar(items: list[Item],
                                                               refs: bool) -> None:
    roots = thread_references(items) if refs else thread_orderedsubject(items)
    body = encode_threads(roots, uid=False)
    check_response(b"* THREAD " + body + b"\r\n" if body else b"* THREAD\r\n")
    numbers = [int(t) for t in re.findall(rb"\d+", body)]
    assert sorted(numbers) == [m.seq for m in items]


def test_summary_keys_and_older_summaries() -> None:
    raw = (b"From: Bob <bob@x.example>\r\nSubject: Re: Bilan\r\nMessage-ID: <z@x>\r\n\r\nhi\r\n")
    meta = Meta.of(raw)
    data = meta.to_json()
    assert data.startswith(b'{"k":') and KEYS_CODEC.loads(data).fields == meta.fields
    assert Meta.from_json(data).keys == meta.fields
    old = json.loads(data)
    del old["k"]  # a summary cached before the keys existed
    old_data = json.dumps(old).encode()
    assert KEYS_CODEC.loads(old_data).fields == meta.fields
    assert Meta.from_json(old_data).keys is None and Meta.from_json(old_data).fields == meta.fields
    computed = KEYS_CODEC.of(raw)
    assert computed.meta is not None and KEYS_CODEC.dumps(computed) == data
    assert (meta.fields.from_addr, meta.fields.subject) == ("bob", "Bilan")


_HEADER_LINE = st.sampled_from(["Date", "From", "To", "Cc", "Subject", "Message-ID",
                                "References", "In-Reply-To"]).flatmap(
    lambda name: st.binary(max_size=60).map(lambda v: name.encode() + b": " + v + b"\r\n"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_HEADER_LINE, max_size=8))
def test_hostile_headers_give_keys(lines: list[bytes]) -> None:
    f = _fields((b"".join(lines) + b"\r\n").decode("latin-1"))
    assert SortFields.from_list(json.loads(json.dumps(f.to_list()))) == f
    assert base_subject(f.subject)[0] == f.subject  # the base subject is a fixed point
