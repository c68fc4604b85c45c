"""IMAP sequence sets (RFC 3501 section 9, ``sequence-set``).

A sequence set is a comma-separated list of numbers and ranges, where ``*``
stands for the largest number in use (the message count for sequence
numbers, the highest UID for UIDs).  Ranges are unordered: ``4:2`` is the
same as ``2:4`` (RFC 3501 9, ``seq-range``).

This module is pure: it knows nothing about mailboxes.  Callers supply the
current maximum when they resolve ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SeqSet", "format_uid_set", "MAX_NUMBER"]

#: RFC 3501 9: nz-number is a non-zero unsigned 32-bit integer.
MAX_NUMBER = 4294967295

_ITEM = re.compile(rb"(?:[1-9][0-9]*|\*)(?::(?:[1-9][0-9]*|\*))?")


@dataclass(frozen=True, slots=True)
class SeqSet:
    """A parsed sequence set.

    ``ranges`` holds ``(low, high)`` pairs as written by the client, where
    ``None`` stands for ``*``; a single number ``n`` is stored as ``(n, n)``.
    ``saved`` is RFC 5182's ``$`` (the result saved by the last ``SEARCH RETURN (SAVE)``):
    the session substitutes it before resolving (``ranges`` is then empty).
    """

    ranges: tuple[tuple[int | None, int | None], ...]
    saved: bool = False

    @classmethod
    def parse(cls, text: bytes | str) -> SeqSet:
        """Parse ``text`` (e.g. ``b"1:3,5,7:*"``).

        Raises:
            ValueError: if ``text`` is not a valid sequence set.
        """
        raw = text.encode("ascii") if isinstance(text, str) else text
        ranges: list[tuple[int | None, int | None]] = []
        for item in raw.split(b","):
            if not _ITEM.fullmatch(item):
                raise ValueError(f"invalid sequence set item {item!r}")
            lo_s, _, hi_s = item.partition(b":")
            lo = None if lo_s == b"*" else int(lo_s)
            hi = lo if not hi_s else (None if hi_s == b"*" else int(hi_s))
            for n in (lo, hi):
                if n is not None and n > MAX_NUMBER:
                    raise ValueError("number out of range")
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SeqSet:
        """Build the most compact set holding exactly ``numbers``."""
        return cls(tuple((lo, hi) for lo, hi in _runs(numbers)))

    def _bounds(self, maximum: int) -> Iterator[tuple[int, int]]:
        for lo, hi in self.ranges:
            a = maximum if lo is None else lo
            b = maximum if hi is None else hi
            yield (a, b) if a <= b else (b, a)

    def contains(self, n: int, maximum: int) -> bool:
        """Is ``n`` in the set when ``*`` means ``maximum``?"""
        return any(a <= n <= b for a, b in self._bounds(maximum))

    def iter(self, maximum: int) -> Iterator[int]:
        """Yield the members in ``1..maximum``, ascending and without duplicates.

        Numbers above ``maximum`` are dropped (RFC 3501 6.4.8: a UID range
        may name UIDs that do not exist).  ``n:*`` with ``n > maximum`` still
        yields ``maximum`` because the range is ``maximum:n`` (RFC 3501 6.4.8).
        """
        seen: set[int] = set()
        for a, b in self._bounds(maximum):
            seen.update(range(max(a, 1), min(b, maximum) + 1))
        yield from sorted(seen)

    def select(self, values: Iterable[int], maximum: int) -> list[int]:
        """Return the ``values`` (e.g. existing UIDs) that are in the set."""
        bounds = list(self._bounds(maximum))
        return [v for v in values if any(a <= v <= b for a, b in bounds)]

    def exceeds(self, maximum: int) -> bool:
        """True if an explicit number is above ``maximum``.

        Servers answer BAD for such *message sequence numbers* (RFC 3501 9,
        ``seq-number``: "a number larger than the number of messages is
        invalid"), but not for UIDs.
        """
        return any(n is not None and n > maximum for r in self.ranges for n in r)

    def __str__(self) -> str:
        out = []
        for lo, hi in self.ranges:
            a = "*" if lo is None else str(lo)
            b = "*" if hi is None else str(hi)
            out.append(a if lo == hi else f"{a}:{b}")
        return ",".join(out)


def _runs(numbers: Iterable[int]) -> Iterator[tuple[int, int]]:
    it = iter(sorted(set(numbers)))
    try:
        start = prev = next(it)
    except StopIteration:
        return
    for n in it:
        if n != prev + 1:
            yield start, prev
            start = n
        prev = n
    yield start, prev


def format_uid_set(numbers: Iterable[int], *, keep_order: bool = False) -> str:
    """Format UIDs for ``COPYUID``/``APPENDUID`` (RFC 4315 3, ``uid-set``).

    With ``keep_order`` the numbers are compressed in the order given, which
    COPYUID needs: the source and destination sets must pair up element by
    element (RFC 4315 3).  Otherwise they are sorted and deduplicated.

    Returns an empty string for no numbers (callers should then omit the code).
    """
    nums = list(numbers) if keep_order else sorted(set(numbers))
    out: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}:{nums[j]}")
        i = j + 1
    return ",".join(out)
