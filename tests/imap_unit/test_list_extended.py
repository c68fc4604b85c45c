"""LIST-EXTENDED selection (RFC 5258 3, RFC 6154) as a table over folder triples."""

from __future__ import annotations

import pytest

from mailserver.imap.listing import ListError, extended_entries, list_line, pattern_regex

FOLDERS = [("INBOX", None, True), ("Sent", "\\Sent", False), ("Foo", None, False),
           ("Foo/Bar", None, True), ("Foo/Baz", None, False), ("Trash", "\\Trash", True)]
ORPHANS = ["Gone", "Foo/Old"]

CASES = [
    ("plain", (), (), "*", ['(\\HasNoChildren) "/" INBOX', '(\\HasChildren) "/" Foo',
                            '(\\HasNoChildren) "/" Foo/Bar', '(\\HasNoChildren) "/" Foo/Baz',
                            '(\\HasNoChildren \\Sent) "/" Sent',
                            '(\\HasNoChildren \\Trash) "/" Trash']),
    ("return-subscribed", (), ("SUBSCRIBED",), "%",
     ['(\\HasNoChildren \\Subscribed) "/" INBOX', '(\\HasChildren) "/" Foo',
      '(\\HasNoChildren \\Sent) "/" Sent', '(\\HasNoChildren \\Trash \\Subscribed) "/" Trash']),
    ("subscribed", ("SUBSCRIBED",), (), "*",
     ['(\\HasNoChildren \\Subscribed) "/" INBOX', '(\\HasNoChildren \\Subscribed) "/" Foo/Bar',
      '(\\NonExistent \\Subscribed) "/" Foo/Old', '(\\NonExistent \\Subscribed) "/" Gone',
      '(\\HasNoChildren \\Trash \\Subscribed) "/" Trash']),
    ("recursivematch", ("SUBSCRIBED", "RECURSIVEMATCH"), (), "%",
     ['(\\HasNoChildren \\Subscribed) "/" INBOX',
      '(\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
      '(\\NonExistent \\Subscribed) "/" Gone',
      '(\\HasNoChildren \\Trash \\Subscribed) "/" Trash']),
    ("special-use", ("SPECIAL-USE",), ("SPECIAL-USE",), "*",
     ['(\\HasNoChildren \\Sent) "/" Sent', '(\\HasNoChildren \\Trash) "/" Trash']),
]


@pytest.mark.parametrize(("name", "selection", "returns", "pattern", "lines"), CASES,
                         ids=[c[0] for c in CASES])
def test_selection(name: str, selection: tuple[str, ...], returns: tuple[str, ...],
                   pattern: str, lines: list[str]) -> None:
    entries = extended_entries(FOLDERS, ORPHANS, [pattern_regex("", pattern)],
                               frozenset(selection), frozenset(returns))
    assert [list_line("LIST", e)[7:-2].decode() for e in entries] == lines


@pytest.mark.parametrize(("selection", "returns"), [
    (("RECURSIVEMATCH",), ()), (("FOO",), ()), ((), ("BAR",))])
def test_refused(selection: tuple[str, ...], returns: tuple[str, ...]) -> None:
    with pytest.raises(ListError):
        extended_entries(FOLDERS, [], [pattern_regex("", "*")], frozenset(selection),
                         frozenset(returns))
