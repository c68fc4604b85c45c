"""The author fields' fast path (``headers._SIMPLE_MAILBOX``) finds exactly what the stdlib
RFC 5322 parser finds, on values of its form, near misses and arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.headers import _SIMPLE_MAILBOX, parsed_addresses, strict_addresses


@settings(max_examples=2000)
@given(st.from_regex(_SIMPLE_MAILBOX, fullmatch=True))
def test_every_value_of_the_simple_form_parses_to_the_same_address(value: str) -> None:
    assert strict_addresses(value) == parsed_addresses(value)
    assert strict_addresses(value) is not None


_PIECES = st.sampled_from(['"', "\\", "<", ">", "@", ".", ",", ";", ":", "(", ")", " ", "\t",
                           "\r\n ", "=?utf-8?q?x?=", "a", "b.c", "é", "\x00", "[1.2.3.4]",
                           "Dr.", "x@y.z", "''"])


@settings(max_examples=3000)
@given(st.lists(_PIECES, max_size=14).map("".join) | st.text(max_size=60))
def test_any_value_gets_the_parsers_answer(value: str) -> None:
    assert strict_addresses(value) == parsed_addresses(value)


@pytest.mark.parametrize("value,expected", [
    ("dr.martin@hopital.test", ("dr.martin@hopital.test",)),
    ("Jean Martin <j.martin@hopital.test>", ("j.martin@hopital.test",)),
    ('"Martin, Jean" <j.martin@hopital.test>', ("j.martin@hopital.test",)),
    ("O'Brien <ob@hopital.test>", ("ob@hopital.test",)),
    ("a@b.test, c@d.test", ("a@b.test", "c@d.test")),  # two: the parser's way
    ("Dr. Martin <m@hopital.test>", ("m@hopital.test",)),  # obsolete: the parser's way
    ("a@b.test <c@d.test>", None),
    ("<a@b.test> x", None),
    ("a@b.test\r\n\tfoo", None),
])
def test_everyday_and_tricky_values(value: str, expected: tuple[str, ...] | None) -> None:
    assert strict_addresses(value) == expected == parsed_addresses(value)
