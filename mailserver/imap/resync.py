"""QRESYNC (RFC 7162 3.2): what a client that cached a mailbox is told when it comes back.

Pure of I/O but for the two store reads it is given: the UIDs expunged after the client's
modseq (kept as tombstones in the store, :mod:`mailserver.store.vanished`) and the messages
changed after it.  ``SELECT mailbox (QRESYNC (uidvalidity modseq [known-uids]))`` is answered,
after the usual SELECT data, with ``* VANISHED (EARLIER) uids`` (restricted to the client's
known UIDs) and a ``FETCH (UID FLAGS MODSEQ)`` for every message changed since; nothing when
the UIDVALIDITY differs (the client must then forget the mailbox).  ``UID FETCH set items
(CHANGEDSINCE m VANISHED)`` sends the ``VANISHED (EARLIER)`` of the UIDs in ``set`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .mailbox import vanished_line

if TYPE_CHECKING:
    from mailserver.store.imapmeta import ImapStore

    from .commands import Qresync
    from .mailbox import SelectedMailbox
    from .seqset import SeqSet

__all__ = ["resync_lines", "earlier_line", "uid_ranges"]

#: The highest UID (RFC 3501 9 nz-number): ``*`` in a UID set of expunged UIDs, which may lie
#: above the highest UID still present.
_TOP = (1 << 32) - 1


def uid_ranges(seqset: SeqSet) -> list[tuple[int, int]]:
    """Inclusive UID ranges of a UID set, ``*`` standing for the highest possible UID."""
    out = []
    for lo, hi in seqset.ranges:
        a, b = _TOP if lo is None else lo, _TOP if hi is None else hi
        out.append((min(a, b), max(a, b)))
    return out


async def earlier_line(store: ImapStore, mb: SelectedMailbox, modseq: int,
                       ranges: list[tuple[int, int]] | None) -> bytes | None:
    """``* VANISHED (EARLIER) ...`` for the UIDs expunged after ``modseq``, or None."""
    gone = await store.vanished(mb.folder_id, modseq, ranges)
    return vanished_line(gone, earlier=True) if gone else None


async def resync_lines(store: ImapStore, mb: SelectedMailbox, q: Qresync) -> list[bytes]:
    """The untagged data of a QRESYNC SELECT after its HIGHESTMODSEQ (RFC 7162 3.2.5)."""
    if q.uidvalidity != mb.uidvalidity:
        return []
    out: list[bytes] = []
    known = uid_ranges(q.known_uids) if q.known_uids is not None else None
    if (line := await earlier_line(store, mb, q.modseq, known)) is not None:
        out.append(line)
    rows = await store.rows_changed_since(mb.folder_id, q.modseq)
    out += mb.announce(r.flags for r in rows)
    for r in rows:
        fetch = mb.flag_update(r.uid, r.flags, r.modseq, with_uid=True, with_modseq=True)
        if fetch is not None:
            out.append(fetch)
    return out
