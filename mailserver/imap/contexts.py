"""Search contexts (RFC 5267 4): PARTIAL windows and the ADDTO / REMOVEFROM updates of
``SEARCH`` / ``SORT RETURN (UPDATE ...)``.

Theory of operation
-------------------
A search run with the UPDATE return option leaves a :class:`SearchContext` on the selected
mailbox: its criteria (``$`` already replaced by the saved UIDs), its results as UIDs in
result order (mailbox order for SEARCH, sort order for SORT) and the mailbox modseq its
results are true at.  It lives until CANCELUPDATE or until the mailbox is no longer
selected (RFC 5267 4.3).  Nothing here reads the store:

* an expunge removes results without evaluating anything: :func:`removed_line` builds the
  REMOVEFROM sent *before* the EXPUNGE / VANISHED lines, with the message numbers still
  valid (RFC 5267 4.3.4);
* after new mail or flag changes the session re-evaluates only the messages whose modseq
  moved past the context's, and :func:`update_line` turns the old and new result lists into
  REMOVEFROM and ADDTO pairs, sent after EXISTS so new message numbers are valid
  (RFC 5267 4.3.3).

SEARCH contexts use context position 0 and sets in mailbox order (RFC 5267 4.3.3, 4.3.4).
SORT contexts give positions: removals from the last position to the first (each pair's
position stays valid while the client applies them in order), additions from the first to
the last (each lands at its final place).  Runs of consecutive positions share one pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from . import encoder as enc
from .searchkeys import SearchKey
from .seqset import format_uid_set

__all__ = ["SearchContext", "MAX_CONTEXTS", "partial_window", "partial_item", "removed_line",
           "update_line"]

#: Update contexts a session may hold; one more is refused with NOUPDATE (RFC 5267 4.3.1:
#: at least one per client).
MAX_CONTEXTS = 16

T = TypeVar("T")
SeqOf = Callable[[int], "int | None"]


@dataclass
class SearchContext:
    """One SEARCH or SORT whose results the client asked to keep up to date."""

    tag: str
    uid: bool
    key: SearchKey
    charset: str | None
    #: SORT criteria; None for a SEARCH (results in mailbox order, positions 0).
    criteria: tuple[tuple[str, bool], ...] | None
    #: Matching UIDs in result order.
    results: list[int]
    #: The mailbox modseq the results were evaluated at.
    modseq: int


def partial_window(nums: Sequence[T], rng: tuple[int, int]) -> Sequence[T]:
    """The results a PARTIAL range names: ``1:100`` the first hundred, ``-1:-100`` the
    last hundred (RFC 9394 3.1); ``500:400`` is ``400:500`` (RFC 5267 4.4); positions
    beyond the results are left out."""
    n = len(nums)
    first, last = ((p - 1) if p > 0 else n + p for p in rng)
    lo, hi = max(min(first, last), 0), min(max(first, last), n - 1)
    return nums[lo:hi + 1] if lo <= hi else []


def partial_item(nums: Sequence[int], rng: tuple[int, int]) -> bytes:
    """``PARTIAL (range set)`` or ``PARTIAL (range NIL)`` (RFC 5267 4.4): the range as asked."""
    window = partial_window(nums, rng)
    found = format_uid_set(window, keep_order=True).encode() if window else b"NIL"
    return b"PARTIAL (%d:%d " % rng + found + b")"


def _numbers(ctx: SearchContext, uids: Sequence[int], seq_of: SeqOf) -> list[int]:
    if ctx.uid:
        return list(uids)
    return [n for u in uids if (n := seq_of(u)) is not None]


def _line(ctx: SearchContext, items: list[bytes]) -> bytes:
    head = b"* ESEARCH (TAG " + enc.quote(ctx.tag) + b")" + (b" UID" if ctx.uid else b"")
    return head + b"".join(b" " + i for i in items) + b"\r\n"


def _pairs(name: bytes, pairs: list[tuple[int, list[int]]]) -> bytes | None:
    pairs = [(pos, nums) for pos, nums in pairs if nums]
    if not pairs:
        return None
    body = b" ".join(b"%d " % pos + format_uid_set(nums, keep_order=True).encode()
                     for pos, nums in pairs)
    return name + b" (" + body + b")"


def _runs(positions: list[tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """(position, uid) ascending by position → (first position, uids) per consecutive run."""
    out: list[tuple[int, list[int]]] = []
    for pos, uid in positions:
        if out and out[-1][0] + len(out[-1][1]) == pos:
            out[-1][1].append(uid)
        else:
            out.append((pos, [uid]))
    return out


def _removals(ctx: SearchContext, gone: set[int], seq_of: SeqOf) -> bytes | None:
    """REMOVEFROM for the results in ``gone`` (numbered by ``seq_of``), then drop them."""
    if not gone.intersection(ctx.results):
        return None
    if ctx.criteria is None:
        item = _pairs(b"REMOVEFROM", [(0, _numbers(ctx, sorted(gone.intersection(ctx.results)),
                                                    seq_of))])
    else:
        runs = _runs([(i + 1, u) for i, u in enumerate(ctx.results) if u in gone])
        item = _pairs(b"REMOVEFROM", [(pos, _numbers(ctx, uids, seq_of))
                                      for pos, uids in reversed(runs)])
    ctx.results = [u for u in ctx.results if u not in gone]
    return item


def removed_line(ctx: SearchContext, gone: set[int], seq_of: SeqOf) -> bytes | None:
    """The REMOVEFROM of expunged results, to send before the EXPUNGE lines (``seq_of``
    still numbers the messages as the client knows them)."""
    item = _removals(ctx, gone, seq_of)
    return _line(ctx, [item]) if item is not None else None


def update_line(ctx: SearchContext, results: list[int], seq_of: SeqOf) -> bytes | None:
    """REMOVEFROM and ADDTO turning the context's results into ``results`` (same order
    rules), or None when nothing changed; the context then holds ``results``."""
    now, before = set(results), set(ctx.results)
    gone = before - now
    if ctx.criteria is not None and [u for u in ctx.results if u in now] != [
            u for u in results if u in before]:
        gone = before  # the kept results changed order (sort keys never change): start over
    items = []
    removed = _removals(ctx, gone, seq_of)
    if removed is not None:
        items.append(removed)
    before = set(ctx.results)
    if ctx.criteria is None:
        added = _pairs(b"ADDTO", [(0, _numbers(ctx, [u for u in results if u not in before],
                                                seq_of))])
    else:
        runs = _runs([(i + 1, u) for i, u in enumerate(results) if u not in before])
        added = _pairs(b"ADDTO", [(pos, _numbers(ctx, uids, seq_of)) for pos, uids in runs])
    if added is not None:
        items.append(added)
    ctx.results = list(results)
    return _line(ctx, items) if items else None
