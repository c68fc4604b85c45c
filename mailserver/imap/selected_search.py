"""SEARCH (RFC 3501 6.4.4) with ESEARCH (RFC 4731) and SEARCHRES (RFC 5182), SORT (RFC 5256,
RFC 5957) and THREAD (RFC 5256): the selected-state handlers that select messages.

Mixed into :class:`~mailserver.imap.selected.SelectedCommands`.  Matching reads rows in chunks
(headers and bodies only when a criterion needs them); SORT and THREAD then read each matched
message's keys from its sealed summary (never its body), kept for the session in
``SelectedMailbox.sort_cache`` (messages never change, so a key read once stays true).  The
algorithms are in :mod:`.sorting`.

SEARCHRES: ``$`` names the messages saved by the last ``SEARCH RETURN (SAVE ...)``, kept as
UIDs in ``saved`` so expunges drop out by themselves; SELECT empties it, and so does a SAVE
search that fails (RFC 5182 2.1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import commands_selected as s
from . import encoder as enc
from .backend import No, Response
from .encoder import ResponseCode as RC
from .meta import KEYS_CODEC, META_CODEC
from .search import BadCharset, SearchMessage, compile_search
from .searchkeys import (
    SearchAll,
    SearchAnd,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSet,
)
from .seqset import SeqSet, format_uid_set
from .sorting import (
    Item,
    encode_threads,
    paused_gc,
    sort_items,
    thread_orderedsubject,
    thread_references,
)

if TYPE_CHECKING:
    from mailserver.directory.service import AccountInfo
    from mailserver.store.imapmeta import ImapStore, Row

    from .mailbox import SelectedMailbox

__all__ = ["SearchCommands", "CHUNK", "esearch_line"]

CHUNK = 200
_BODIES = 50  # messages decrypted per query by SEARCH BODY/TEXT (bounds the memory held)
_KEYS_CHUNK = 2000


def _has_modseq(key: SearchKey | None) -> bool:
    if isinstance(key, SearchModSeq):
        return True
    if isinstance(key, SearchNot):
        return _has_modseq(key.key)
    if isinstance(key, SearchOr):
        return _has_modseq(key.left) or _has_modseq(key.right)
    if isinstance(key, SearchAnd):
        return any(_has_modseq(k) for k in key.keys)
    return False


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def esearch_line(tag: str, uid: bool, returns: Sequence[str], nums: Sequence[int],
                 modseq: int | None) -> bytes:
    """``* ESEARCH (TAG "t") [UID] ...`` (RFC 4731 3.1); ``nums`` ascending, or in sort
    order for ESORT (RFC 5267 3: MIN and MAX are the first and last in that order, ALL keeps
    it).  MIN, MAX and ALL are left out when nothing matched; COUNT, when asked, is given
    even then."""
    out = [b"* ESEARCH (TAG " + enc.quote(tag) + b")"]
    if uid:
        out.append(b"UID")
    if nums:
        if "MIN" in returns:
            out.append(b"MIN %d" % nums[0])
        if "MAX" in returns:
            out.append(b"MAX %d" % nums[-1])
        if "ALL" in returns:
            out.append(b"ALL " + format_uid_set(nums, keep_order=True).encode())
    if "COUNT" in returns:
        out.append(b"COUNT %d" % len(nums))
    if modseq is not None and nums:  # RFC 7162 3.1.5
        out.append(b"MODSEQ %d" % modseq)
    return b" ".join(out) + b"\r\n"


class SearchCommands:
    """SEARCH, SORT and THREAD (see the module docstring)."""

    backend: Any
    store: ImapStore
    selected: SelectedMailbox | None
    condstore: bool
    account: AccountInfo | None
    saved: list[int]
    utf8: bool
    send: Callable[[bytes], Awaitable[None]]

    @property
    def account_id(self) -> int:
        """The logged-in account."""
        assert self.account is not None
        return self.account.id

    @property
    def mb(self) -> SelectedMailbox:
        """The selected mailbox."""
        assert self.selected is not None
        return self.selected


    # -- $ (RFC 5182) ---------------------------------------------------------------------
    def with_saved(self, seqset: SeqSet, uid: bool) -> SeqSet:
        """``$`` replaced by the saved messages, as UIDs or current sequence numbers."""
        if not seqset.saved:
            return seqset
        if uid:
            return SeqSet.of(self.saved)
        return SeqSet.of(n for u in self.saved if (n := self.mb.seq_of(u)) is not None)

    def _key_with_saved(self, key: SearchKey) -> SearchKey:
        if isinstance(key, SearchSet) and key.seqset.saved:
            return SearchSet(self.with_saved(key.seqset, True), uid=True)
        if isinstance(key, SearchNot):
            return SearchNot(self._key_with_saved(key.key))
        if isinstance(key, SearchOr):
            return SearchOr(self._key_with_saved(key.left), self._key_with_saved(key.right))
        if isinstance(key, SearchAnd):
            return SearchAnd(tuple(self._key_with_saved(k) for k in key.keys))
        return key

    # -- matching ---------------------------------------------------------------------------
    async def _matches(self, key: SearchKey | None, charset: str | None, *,
                       for_sort: bool = False) -> list[tuple[int, Row]]:
        """(sequence number, row) of the messages matching ``key``, in UID order.

        ``for_sort``: the rows are used for their immutable columns only (id, UID, arrival,
        size), so ``ALL`` is answered from the session's row cache.
        """
        mb = self.mb
        assert key is not None
        try:
            prog = compile_search(self._key_with_saved(key), charset, max_seq=mb.exists,
                                  max_uid=mb.max_uid)
        except BadCharset:
            raise No("unsupported charset", RC.badcharset(("US-ASCII", "UTF-8"))) from None
        if for_sort and isinstance(key, SearchAll):  # SORT/THREAD ... ALL: nothing to test
            return await self._all_rows()
        wants_meta = prog.needs_headers or prog.needs_body
        found: list[tuple[int, Row]] = []
        uids = mb.uids  # an array: slices are cheap, no list of 100k ints
        step = CHUNK if wants_meta else CHUNK * 10
        for i in range(0, len(uids), step):
            rows = await self.store.rows(mb.folder_id, uids[i:i + step])
            metas = (await self.store.metas(self.account_id, rows, META_CODEC)
                     if wants_meta else {})
            bodies: dict[int, bytes] = {}
            if prog.needs_body:  # a few messages' octets per query, not one query each
                ids = [r.id for r in rows if r.id in metas]
                for k in range(0, len(ids), _BODIES):
                    bodies.update(await self.store.raws(ids[k:k + _BODIES]))
            for r in rows:
                seq = mb.seq_of(r.uid)
                meta = metas.get(r.id)
                if seq is None or (wants_meta and meta is None):
                    continue  # gone meanwhile
                body = b""
                if prog.needs_body and meta is not None:
                    if r.id not in bodies:
                        continue  # expunged meanwhile
                    body = bodies[r.id][meta.summary.root.body_start:]
                flags = set(r.flags.split())
                if r.uid in mb.recent:
                    flags.add("\\Recent")
                msg = SearchMessage(seq, r.uid, frozenset(flags), r.internaldate, r.size,
                                    header=_const(meta.header if meta else b""),
                                    body=_const(body), modseq=r.modseq)
                if prog.matches(msg):
                    found.append((seq, r))
        return found

    async def _all_rows(self) -> list[tuple[int, Row]]:
        """Every known message's row, kept for the session (what SORT reads never changes)."""
        mb = self.mb
        cache = mb.row_cache
        missing = [u for u in mb.uids if u not in cache]
        if len(missing) > len(mb.uids) // 2:
            cache.update((r.uid, r) for r in await self.store.all_rows(mb.folder_id))
        elif missing:
            cache.update((r.uid, r) for r in await self.store.rows(mb.folder_id, missing))
        return [(i + 1, cache[u]) for i, u in enumerate(mb.uids) if u in cache]

    # -- SEARCH ---------------------------------------------------------------------------
    async def do_search(self, cmd: s.Search) -> Response:
        if self.utf8 and cmd.charset is not None:  # RFC 6855 3
            return Response("BAD", "no CHARSET once UTF8=ACCEPT is enabled")
        want_modseq = _has_modseq(cmd.key)
        if want_modseq:
            self.condstore = True
        saving = cmd.returns is not None and "SAVE" in cmd.returns
        try:
            found = await self._matches(cmd.key, cmd.charset)
        except Exception:
            if saving:  # RFC 5182 2.1: a failed SAVE search leaves $ empty
                self.saved = []
            raise
        nums = [r.uid if cmd.uid else seq for seq, r in found]
        if cmd.returns is None:
            line = b"* SEARCH" + b"".join(b" %d" % n for n in nums)
            if want_modseq and found:  # RFC 7162 3.1.5
                line += b" (MODSEQ %d)" % max(r.modseq for _, r in found)
            await self.send(line + b"\r\n")
            return Response("OK", "SEARCH completed")
        returns = set(cmd.returns)
        picked = found  # RFC 5182 2.1, RFC 7162 3.1.5: MIN/MAX alone concern only those
        if found and returns & {"MIN", "MAX"} and not returns & {"ALL", "COUNT"}:
            picked = ([found[0]] if "MIN" in returns else []) + (
                [found[-1]] if "MAX" in returns else [])
        if saving:
            self.saved = sorted({r.uid for _, r in picked})
        if returns != {"SAVE"}:  # RFC 5182 2.1: SAVE alone gets no ESEARCH
            modseq = max((r.modseq for _, r in picked), default=0) if want_modseq else None
            await self.send(esearch_line(cmd.tag, cmd.uid, cmd.returns, nums, modseq))
        return Response("OK", "SEARCH completed")

    # -- SORT and THREAD -------------------------------------------------------------------
    async def _items(self, key: SearchKey | None, charset: str | None) -> list[Item]:
        """The matching messages with their sort keys (from the sealed summaries)."""
        found = await self._matches(key, charset, for_sort=True)
        cache = self.mb.sort_cache
        missing = [r for _, r in found if r.id not in cache]
        for i in range(0, len(missing), _KEYS_CHUNK):
            keys = await self.store.metas(self.account_id, missing[i:i + _KEYS_CHUNK],
                                          KEYS_CODEC)
            cache.update((mid, k.fields) for mid, k in keys.items())
        return [Item(seq, r.uid, r.internaldate.timestamp(), r.size, cache[r.id])
                for seq, r in found if r.id in cache]

    async def do_sort(self, cmd: s.Sort) -> Response:
        want_modseq = _has_modseq(cmd.key)
        if want_modseq:
            self.condstore = True
        found = await self._items(cmd.key, cmd.charset)
        with paused_gc():
            items = sort_items(found, cmd.criteria)
            nums = [m.uid if cmd.uid else m.seq for m in items]
        modseq = None
        if want_modseq and items:  # RFC 7162 3.1.5
            rows = await self.store.rows(self.mb.folder_id, sorted(m.uid for m in items))
            modseq = max((r.modseq for r in rows), default=0)
        if cmd.returns is not None:  # ESORT (RFC 5267 3)
            await self.send(esearch_line(cmd.tag, cmd.uid, cmd.returns, nums, modseq))
            return Response("OK", "SORT completed")
        line = b"* SORT" + b"".join(b" %d" % n for n in nums)
        if modseq is not None:
            line += b" (MODSEQ %d)" % modseq
        await self.send(line + b"\r\n")
        return Response("OK", "SORT completed")

    async def do_thread(self, cmd: s.Thread) -> Response:
        items = await self._items(cmd.key, cmd.charset)
        with paused_gc():
            roots = (thread_references(items) if cmd.algorithm == "REFERENCES"
                     else thread_orderedsubject(items))
            body = encode_threads(roots, uid=cmd.uid)
            del roots
        await self.send(b"* THREAD " + body + b"\r\n" if body else b"* THREAD\r\n")
        return Response("OK", "THREAD completed")

