"""RFC 5267 contexts without a server: the PARTIAL and CANCELUPDATE grammar, PARTIAL windows,
and the ADDTO / REMOVEFROM a change of results turns into (checked against the formal
syntax and replayed as a client would apply them)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap import commands_selected as s
from mailserver.imap.contexts import (
    SearchContext,
    partial_item,
    partial_window,
    removed_line,
    update_line,
)
from mailserver.imap.parser import Invalid, parse_command
from mailserver.imap.searchkeys import SearchAll
from tests.imap_unit.responses import check_response


@pytest.mark.parametrize(("line", "returns", "partial"), [
    (b"a SEARCH RETURN (PARTIAL 1:100) ALL", ("PARTIAL",), (1, 100)),
    (b"a SEARCH RETURN (COUNT PARTIAL -1:-100 UPDATE CONTEXT) ALL",
     ("COUNT", "PARTIAL", "UPDATE", "CONTEXT"), (-1, -100)),
    (b"a UID SEARCH RETURN (partial 500:400) ALL", ("PARTIAL",), (500, 400)),
])
def test_search_partial_parses(line: bytes, returns: tuple[str, ...],
                               partial: tuple[int, int]) -> None:
    cmd = parse_command(line + b"\r\n")
    assert isinstance(cmd, s.Search) and cmd.returns == returns and cmd.partial == partial


def test_sort_partial_and_cancelupdate_parse() -> None:
    cmd = parse_command(b"a SORT RETURN (UPDATE PARTIAL -5:-1) (DATE) UTF-8 ALL\r\n")
    assert isinstance(cmd, s.Sort) and cmd.partial == (-5, -1) and "UPDATE" in cmd.returns
    assert parse_command(b'b CANCELUPDATE "a" "x y"\r\n') == s.CancelUpdate("b", ("a", "x y"))


@pytest.mark.parametrize("line", [
    b"a SEARCH RETURN (PARTIAL 1:10 ALL) ALL",  # RFC 5267 4.4: not both
    b"a SEARCH RETURN (PARTIAL 1:10 PARTIAL 2:3) ALL",
    b"a SEARCH RETURN (PARTIAL -1:10) ALL",
    b"a SEARCH RETURN (PARTIAL 0:10) ALL",
    b"a SEARCH RETURN (PARTIAL 1) ALL",
    b"a SEARCH RETURN (PARTIAL 4294967296:1) ALL",
    b"a SORT RETURN (SAVE) (DATE) UTF-8 ALL",
    b"a CANCELUPDATE",
    b"a CANCELUPDATE a",
])
def test_bad_forms_are_refused(line: bytes) -> None:
    assert isinstance(parse_command(line + b"\r\n"), Invalid)


def test_partial_windows() -> None:
    nums = [10, 11, 12, 13, 14]
    assert partial_window(nums, (1, 2)) == [10, 11]
    assert partial_window(nums, (-1, -2)) == [13, 14]
    assert partial_window(nums, (-2, -100)) == [10, 11, 12, 13]
    assert partial_window(nums, (4, 3)) == [12, 13]
    assert partial_window(nums, (6, 9)) == []
    assert partial_item([], (1, 5)) == b"PARTIAL (1:5 NIL)"


def _ctx(results: list[int], sort: bool, uid: bool = True) -> SearchContext:
    return SearchContext("t1", uid, SearchAll(), None, (("ARRIVAL", True),) if sort else None,
                         list(results), 1)


_PAIR = re.compile(rb"(ADDTO|REMOVEFROM) \(([^)]*)\)")


def _apply(before: list[int], line: bytes) -> list[int]:
    """A client keeping its result list from ADDTO / REMOVEFROM (RFC 5267 4.3.3, 4.3.4)."""
    out = list(before)
    for name, body in _PAIR.findall(line):
        words = body.split()
        for pos_b, set_b in zip(words[::2], words[1::2], strict=True):
            pos, nums = int(pos_b), []
            for part in set_b.split(b","):
                a, _, b = part.partition(b":")
                lo, hi = int(a), int(b or a)
                nums += range(lo, hi + 1) if lo <= hi else range(lo, hi - 1, -1)
            if name == b"REMOVEFROM":
                if pos == 0:
                    out = [n for n in out if n not in nums]
                else:
                    assert out[pos - 1:pos - 1 + len(nums)] == nums
                    del out[pos - 1:pos - 1 + len(nums)]
            elif pos == 0:
                out = sorted(set(out) | set(nums))
            else:
                out[pos - 1:pos - 1] = nums
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 60), unique=True), st.lists(st.integers(1, 60), unique=True),
       st.booleans())
def test_updates_replay_to_the_new_results(old: list[int], new: list[int], sort: bool) -> None:
    if not sort:
        old, new = sorted(old), sorted(new)
    ctx = _ctx(old, sort)
    line = update_line(ctx, new, lambda u: u)
    assert ctx.results == new
    if line is None:
        assert old == new
        return
    check_response(line)
    assert _apply(old, line) == new


def test_expunge_removal_uses_the_numbers_before_the_expunge() -> None:
    ctx = _ctx([30, 10, 20], sort=True, uid=False)
    seqs = {10: 1, 20: 2, 30: 3}
    assert removed_line(ctx, {10, 30}, seqs.get) == \
        b'* ESEARCH (TAG "t1") REMOVEFROM (1 3,1)\r\n'
    assert ctx.results == [20]
    assert removed_line(ctx, {99}, seqs.get) is None
    search = _ctx([10, 20, 30], sort=False)
    assert removed_line(search, {20, 30}, seqs.get) == \
        b'* ESEARCH (TAG "t1") UID REMOVEFROM (0 20,30)\r\n'
