"""A session's view of its selected mailbox: message numbers, \\Recent, and change detection.

Theory of operation
-------------------
RFC 3501 2.3.1.2: message sequence numbers are per session and only change when the server
tells the client (EXISTS / EXPUNGE).  The view keeps the UIDs the client knows, in order, in an
``array('Q')`` (8 bytes per message: 100,000 messages cost 800 kB, no per-message object), and
the highest modseq it has reported.

:meth:`SelectedMailbox.poll` brings the view up to date with the store and returns the untagged
responses to send:

1. read the folder row (:meth:`ImapStore.delta`); if neither its highest modseq nor its
   message count moved, nothing changed;
2. otherwise read the messages whose modseq is above the known one and the UIDs above the
   highest known one, which are new (``EXISTS``);
3. if the folder's message count is below ``known + new``, some messages went away (EXPUNGE
   or MOVE by another session): the store compares per-bucket counts over the known UID
   range and reads only the UIDs of the buckets that shrank (never the whole folder for a
   few expunges); the missing ones are reported as ``EXPUNGE``, highest sequence number
   first so each number is valid when sent;
4. keywords new to the session are announced with ``FLAGS`` and ``PERMANENTFLAGS``
   (RFC 3501 7.2.6) before any FETCH shows them;
5. other changed messages get ``FETCH (FLAGS ...)`` (with ``MODSEQ`` once CONDSTORE is on).

EXPUNGE may not be sent while answering FETCH, STORE or SEARCH (RFC 3501 7.4.1); the caller
passes ``allow_expunge=False`` then and the vanished messages are reported at a later poll.

\\Recent (RFC 3501 2.3.2) is claimed in the store (``folders.recent_uid``, see
:meth:`ImapStore.claim_recent`): a session that SELECTs a folder claims the messages above the
folder's mark as its recent ones and raises the mark; so does a session that learns of new
mail while selected, and one that APPENDs to its selected folder (in the append's transaction:
:attr:`SelectedMailbox.claimed` holds the range until a poll reports the message).  EXAMINE
shows the unclaimed messages as \\Recent and claims nothing.
The claim is one locked write, so with several server processes on one database each message
is still \\Recent in exactly one read-write session.  When the mark already covers the new
messages (another session claimed them) nothing is written.  An IMAP4rev2 session (RFC 9051
E.2) has no \\Recent: it claims nothing and gets no RECENT response.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailserver.errors import StoreError

from . import encoder as enc
from .contexts import SearchContext, removed_line
from .encoder import ResponseCode as RC
from .seqset import SeqSet, format_uid_set

if TYPE_CHECKING:
    from mailserver.store.imapmeta import ImapStore, Row

    from .sortfields import SortFields
    from .sorting import Item

__all__ = ["SelectedMailbox", "format_flags", "vanished_line", "flags_lines", "SYSTEM_FLAGS"]

log = logging.getLogger(__name__)

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def flags_lines(keywords: Iterable[str], readonly: bool) -> list[bytes]:
    """``* FLAGS (...)`` and ``* OK [PERMANENTFLAGS (...)]`` for the system flags and the
    folder's keywords (RFC 3501 7.2.6, 7.1); ``\\*``: clients may create keywords."""
    names = [*SYSTEM_FLAGS, *sorted(keywords)]
    return [enc.untagged("FLAGS", "(" + " ".join(names) + ")"),
            enc.untagged("OK", "permanent flags", code=RC.permanentflags(
                [*names, "\\*"] if not readonly else []))]


def vanished_line(uids: Iterable[int], *, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 3.2.10)."""
    return (b"* VANISHED " + (b"(EARLIER) " if earlier else b"")
            + format_uid_set(uids).encode() + b"\r\n")


def format_flags(flags: str | Sequence[str], recent: bool = False) -> bytes:
    """``(\\Seen foo)`` from stored space-separated flags."""
    names = flags.split() if isinstance(flags, str) else list(flags)
    if recent:
        names.append("\\Recent")
    return b"(" + " ".join(names).encode("utf-8", "replace") + b")"


@dataclass
class SelectedMailbox:
    """The selected folder as this session knows it."""

    folder_id: int
    account_id: int
    name: str
    readonly: bool
    uidvalidity: int
    uids: array[int]
    modseq: int
    recent: set[int] = field(default_factory=set)
    #: Keywords announced to this session with FLAGS.
    keywords: set[str] = field(default_factory=set)
    #: uid -> modseq already reported to this session by STORE (not to be repeated).
    reported: dict[int, int] = field(default_factory=dict)
    #: message id -> SORT/THREAD keys read from its sealed summary (see .selected_search).
    sort_cache: dict[int, SortFields] = field(default_factory=dict)
    #: uid -> row, for SORT/THREAD ALL (they read only its never-changing columns).
    row_cache: dict[int, Row] = field(default_factory=dict)
    #: SORT/THREAD ALL's items and the UIDs they were numbered against: reused while the
    #: session's UIDs are the same (same sequence numbers; the rest never changes).
    all_items: tuple[array[int], tuple[Item, ...]] | None = None
    #: QRESYNC enabled: expunges are told with ``VANISHED`` instead of ``EXPUNGE`` (RFC 7162
    #: 3.2.10).
    vanished: bool = False
    #: IMAP4rev2 enabled (RFC 9051 E.2): no \\Recent, no RECENT response.
    rev2: bool = False
    #: tag -> search kept up to date (RFC 5267 4.3); they end with the selection.
    contexts: dict[str, SearchContext] = field(default_factory=dict)
    #: the last poll left expunges unreported (FETCH, STORE, SEARCH may not send them)
    held_back: bool = False
    #: \\Recent claimed by this session's APPENDs, (previous mark, claimed up to): the
    #: UIDs in between are its recent ones once a poll learns of them.
    claimed: list[tuple[int, int]] = field(default_factory=list)

    # -- numbers ------------------------------------------------------------------
    @property
    def exists(self) -> int:
        """Message count as the client knows it."""
        return len(self.uids)

    @property
    def max_uid(self) -> int:
        """Highest known UID, 0 when empty."""
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        """Sequence number of ``uid``, or None."""
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, seqset: SeqSet, uid: bool) -> list[int]:
        """UIDs named by a sequence set (message numbers or UIDs), ascending, no duplicates."""
        out: set[int] = set()
        if uid:
            top = self.max_uid
            for lo, hi in seqset.ranges:
                a = top if lo is None else lo
                b = top if hi is None else hi
                a, b = min(a, b), max(a, b)
                out.update(self.uids[bisect_left(self.uids, a):bisect_right(self.uids, b)])
        else:
            n = len(self.uids)
            for lo, hi in seqset.ranges:
                a = n if lo is None else lo
                b = n if hi is None else hi
                a, b = max(1, min(a, b)), min(n, max(a, b))
                if a <= b:
                    out.update(self.uids[a - 1:b])
        return sorted(out)

    # -- \Recent and keywords ----------------------------------------------------------
    async def claim_recent(self, store: ImapStore, mark: int) -> None:
        """Claim \\Recent for the known UIDs above the folder's ``mark``.

        ``mark`` may be stale (lower): the store returns the real previous mark.  A read-only
        session sees them as \\Recent without claiming them: "subsequent sessions will also
        see \\Recent set for this message" (RFC 3501 2.3.2)."""
        top = self.max_uid
        if top <= mark or self.rev2:
            return
        if self.readonly:
            self.recent.update(self.uids[bisect_right(self.uids, mark):])
            return
        try:
            previous = await store.claim_recent(self.folder_id, top)
        except StoreError as exc:  # unclaimed messages stay \Recent for a later session
            log.warning("imap: \\Recent not claimed: %s", exc)
            return
        self.recent.update(self.uids[bisect_right(self.uids, previous):])

    def announce(self, flag_sets: Iterable[str | Iterable[str]]) -> list[bytes]:
        """FLAGS / PERMANENTFLAGS lines if ``flag_sets`` hold keywords this session was not
        told about yet (they must be announced before a FETCH shows them); else ``[]``."""
        new: set[str] = set()
        for flags in flag_sets:
            names = flags.split() if isinstance(flags, str) else flags
            new.update(f for f in names if f and not f.startswith("\\"))
        new -= self.keywords
        if not new:
            return []
        self.keywords |= new
        return flags_lines(self.keywords, self.readonly)

    # -- changes ----------------------------------------------------------------------
    def remove(self, gone: Sequence[int]) -> list[bytes]:
        """Drop ``gone`` UIDs; returns ``* n EXPUNGE`` lines, highest number first, or one
        ``* VANISHED uid-set`` once QRESYNC is enabled (RFC 7162 3.2.10).  Search contexts
        holding them get their REMOVEFROM first, while the numbers are valid (RFC 5267
        4.3.4)."""
        gone_set = set(gone)
        seqs = [i + 1 for i, u in enumerate(self.uids) if u in gone_set] if gone_set else []
        if not seqs:
            return []
        known = [self.uids[s - 1] for s in seqs]
        out = [line for ctx in self.contexts.values()
               if (line := removed_line(ctx, set(known), self.seq_of)) is not None]
        self.uids = array("Q", (u for u in self.uids if u not in gone_set))
        self.recent -= gone_set
        if self.vanished:
            return [*out, vanished_line(known)]
        return out + [b"* %d EXPUNGE\r\n" % s for s in reversed(seqs)]

    def flag_update(self, uid: int, flags: str, modseq: int, *, with_uid: bool,
                    with_modseq: bool) -> bytes | None:
        """``* n FETCH (FLAGS (...))`` for a known message."""
        seq = self.seq_of(uid)
        if seq is None:
            return None
        items: list[tuple[str, enc.Value]] = []
        if with_uid:
            items.append(("UID", uid))
        items.append(("FLAGS", enc.Raw(format_flags(flags, uid in self.recent))))
        if with_modseq:
            items.append(("MODSEQ", enc.Raw(b"(%d)" % modseq)))
        return enc.fetch(seq, items)

    async def poll(self, store: ImapStore, *, allow_expunge: bool, condstore: bool
                   ) -> list[bytes] | None:
        """Bring the view up to date (see the module docstring); None if the folder is gone."""
        delta = await store.delta(self.folder_id, self.modseq, self.uids,
                                  find_gone=allow_expunge)
        if delta is None:
            return None
        out: list[bytes] = []
        changes, new = delta.changes, delta.new
        self.held_back = False
        if delta.highestmodseq <= self.modseq and not new and not delta.gone \
                and delta.message_count == len(self.uids):
            return out
        top = self.max_uid
        if delta.gone:
            out += self.remove(delta.gone)
        if new:
            self.uids.extend(new)
            for previous, upto in self.claimed:
                self.recent.update(self.uids[bisect_right(self.uids, previous):
                                             bisect_right(self.uids, upto)])
            self.claimed.clear()
            await self.claim_recent(store, delta.recent_uid)
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
            if not self.rev2:
                out.append(b"* %d RECENT\r\n" % len(self.recent))
        if delta.keywords is not None:
            out += self.announce([delta.keywords])
        for c in changes:
            if c.uid > top or self.reported.get(c.uid) == c.modseq:
                continue
            line = self.flag_update(c.uid, c.flags, c.modseq, with_uid=True,
                                    with_modseq=condstore)
            if line is not None:
                out.append(line)
        self.reported.clear()
        self.modseq = max(self.modseq, delta.highestmodseq)
        # Messages expunged elsewhere that this command may not report (RFC 3501 7.4.1):
        # the view still counts them, the folder no longer does.
        self.held_back = not allow_expunge and delta.message_count != len(self.uids)
        return out
