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

CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4): PARTIAL answers a window of the results;
UPDATE leaves a :class:`~.contexts.SearchContext` on the mailbox, which
:meth:`SearchCommands.refresh_contexts` brings up to date after each poll (after a command,
during IDLE) by re-evaluating only the messages whose modseq moved; CANCELUPDATE drops it.
The CONTEXT hint is accepted and changes nothing (RFC 5267 4.2: servers MAY ignore it).
"""

from __future__ import annotations

from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import commands_selected as s
from . import encoder as enc
from .backend import No, Response
from .contexts import MAX_CONTEXTS, SearchContext, partial_item, partial_window, update_line
from .encoder import ResponseCode as RC
from .meta import KEYS_CODEC, META_CODEC
from .search import BadCharset, SearchMessage, SearchProgram, compile_search
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
                 modseq: int | None, partial: tuple[int, int] | None = None) -> bytes:
    """``* ESEARCH (TAG "t") [UID] ...`` (RFC 4731 3.1); ``nums`` ascending, or in sort
    order for ESORT (RFC 5267 3: MIN and MAX are the first and last in that order, ALL keeps
    it).  MIN, MAX and ALL are left out when nothing matched; COUNT, when asked, is given
    even then, and so is PARTIAL (with NIL, RFC 5267 4.4)."""
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
    if partial is not None:
        out.append(partial_item(nums, partial))
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
    rev2: bool
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
    def _program(self, key: SearchKey | None, charset: str | None) -> SearchProgram:
        mb = self.mb
        assert key is not None
        try:
            return compile_search(self._key_with_saved(key), charset, max_seq=mb.exists,
                                  max_uid=mb.max_uid)
        except BadCharset:
            raise No("unsupported charset", RC.badcharset(("US-ASCII", "UTF-8"))) from None

    async def _matches(self, key: SearchKey | None, charset: str | None, *,
                       for_sort: bool = False, only: Sequence[int] | None = None
                       ) -> list[tuple[int, Row]]:
        """(sequence number, row) of the messages matching ``key``, in UID order.

        ``for_sort``: the rows are used for their immutable columns only (id, UID, arrival,
        size), so ``ALL`` is answered from the session's row cache.  ``only``: test these
        UIDs (ascending) instead of every message.
        """
        mb = self.mb
        prog = self._program(key, charset)
        if for_sort and isinstance(key, SearchAll):  # SORT/THREAD ... ALL: nothing to test
            return await self._all_rows(only)
        wants_meta = prog.needs_headers or prog.needs_body
        found: list[tuple[int, Row]] = []
        uids = mb.uids if only is None else only  # an array: slices are cheap
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

    async def _all_rows(self, only: Sequence[int] | None = None) -> list[tuple[int, Row]]:
        """Every known message's row (or those of ``only``), kept for the session (what SORT
        reads never changes)."""
        mb = self.mb
        cache = mb.row_cache
        missing = [u for u in (mb.uids if only is None else only) if u not in cache]
        if only is None and len(missing) > len(mb.uids) // 2:
            cache.update((r.uid, r) for r in await self.store.all_rows(mb.folder_id))
        elif missing:
            cache.update((r.uid, r) for r in await self.store.rows(mb.folder_id, missing))
        if only is not None:
            return [(seq, cache[u]) for u in only
                    if u in cache and (seq := mb.seq_of(u)) is not None]
        return [(i + 1, cache[u]) for i, u in enumerate(mb.uids) if u in cache]

    # -- SEARCH ---------------------------------------------------------------------------
    async def do_search(self, cmd: s.Search) -> Response:
        if self.utf8 and cmd.charset is not None:  # RFC 6855 3
            return Response("BAD", "no CHARSET once UTF8=ACCEPT is enabled")
        if self.rev2 and cmd.returns is None:  # RFC 9051 6.4.4: SEARCH answers ESEARCH
            cmd = replace(cmd, returns=("ALL",))
        if (bad := self._check_update(cmd.tag, cmd.returns)) is not None:
            return bad
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
        if found and (returns & {"MIN", "MAX"} or cmd.partial) \
                and not returns & {"ALL", "COUNT"}:  # RFC 9394 3.1: and PARTIAL its window
            picked = ([found[0]] if "MIN" in returns else []) + (
                [found[-1]] if "MAX" in returns else []) + (
                list(partial_window(found, cmd.partial)) if cmd.partial else [])
        if saving:
            self.saved = sorted({r.uid for _, r in picked})
        if returns != {"SAVE"}:  # RFC 5182 2.1: SAVE alone gets no ESEARCH
            modseq = max((r.modseq for _, r in picked), default=0) if want_modseq else None
            await self.send(esearch_line(cmd.tag, cmd.uid, cmd.returns, nums, modseq,
                                         cmd.partial))
        if "UPDATE" in returns:
            await self._keep_context(cmd.tag, cmd.uid, cmd.key, cmd.charset, None,
                                     [r.uid for _, r in found])
        return Response("OK", "SEARCH completed")

    # -- SORT and THREAD -------------------------------------------------------------------
    async def _items(self, key: SearchKey | None, charset: str | None,
                     only: Sequence[int] | None = None) -> list[Item]:
        """The matching messages with their sort keys (from the sealed summaries).  For ALL,
        the items are kept and reused while the session's UIDs stay the same (building 100,000
        of them was half of a warm THREAD)."""
        mb = self.mb
        every = isinstance(key, SearchAll) and only is None
        if every and mb.all_items is not None and mb.all_items[0] == mb.uids:
            self._program(key, charset)  # the charset is still checked
            return list(mb.all_items[1])
        found = await self._matches(key, charset, for_sort=True, only=only)
        cache = mb.sort_cache
        missing = [r for _, r in found if r.id not in cache]
        for i in range(0, len(missing), _KEYS_CHUNK):
            keys = await self.store.metas(self.account_id, missing[i:i + _KEYS_CHUNK],
                                          KEYS_CODEC)
            cache.update((mid, k.fields) for mid, k in keys.items())
        items = [Item(seq, r.uid, r.internaldate.timestamp(), r.size, cache[r.id])
                 for seq, r in found if r.id in cache]
        if every and len(items) == len(mb.uids):  # none gone meanwhile
            mb.all_items = (array("Q", mb.uids), tuple(items))
        return items

    async def do_sort(self, cmd: s.Sort) -> Response:
        if (bad := self._check_update(cmd.tag, cmd.returns)) is not None:
            return bad
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
            await self.send(esearch_line(cmd.tag, cmd.uid, cmd.returns, nums, modseq,
                                         cmd.partial))
            if "UPDATE" in cmd.returns:
                await self._keep_context(cmd.tag, cmd.uid, cmd.key, cmd.charset, cmd.criteria,
                                         [m.uid for m in items])
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


    # -- update contexts (RFC 5267 4.3) ------------------------------------------------------
    def _check_update(self, tag: str, returns: Sequence[str] | None) -> Response | None:
        """RFC 5267 4.3: UPDATE with the tag of a live context is refused with BAD."""
        if returns is not None and "UPDATE" in returns and tag in self.mb.contexts:
            return Response("BAD", "tag already names an updating search")
        return None

    async def _keep_context(self, tag: str, uid: bool, key: SearchKey | None,
                            charset: str | None, criteria: tuple[tuple[str, bool], ...] | None,
                            results: list[int]) -> None:
        mb = self.mb
        if len(mb.contexts) >= MAX_CONTEXTS:  # RFC 5267 4.3.1
            await self.send(enc.untagged("NO", "too many updating searches",
                                         code=RC("NOUPDATE", enc.quote(tag).decode())))
            return
        assert key is not None
        mb.contexts[tag] = SearchContext(tag, uid, self._key_with_saved(key), charset, criteria,
                                         results, mb.modseq)

    async def refresh_contexts(self) -> list[bytes]:
        """ADDTO / REMOVEFROM lines for the contexts whose messages changed since they were
        last evaluated (only those messages are tested again)."""
        mb = self.selected
        if mb is None or not mb.contexts:
            return []
        stale = [ctx for ctx in mb.contexts.values() if ctx.modseq < mb.modseq]
        if not stale:
            return []
        changed = [r for r in await self.store.rows_changed_since(
            mb.folder_id, min(ctx.modseq for ctx in stale)) if mb.seq_of(r.uid) is not None]
        out = []
        for ctx in stale:
            touched = [r.uid for r in changed if r.modseq > ctx.modseq]
            ctx.modseq = mb.modseq
            if not touched:
                continue
            hits = {r.uid for _, r in await self._matches(ctx.key, ctx.charset, only=touched)}
            gone = set(touched) - hits
            kept = {u for u in ctx.results if u not in gone} | hits
            if ctx.criteria is None:
                results = sorted(kept)
            elif hits.issubset(ctx.results):  # removals only: the order stands
                results = [u for u in ctx.results if u not in gone]
            else:
                with paused_gc():
                    results = [m.uid for m in sort_items(
                        await self._items(SearchAll(), None, sorted(kept)), ctx.criteria)]
            if (line := update_line(ctx, results, mb.seq_of)) is not None:
                out.append(line)
        return out

    async def do_cancelupdate(self, cmd: s.CancelUpdate) -> Response:
        contexts = self.mb.contexts
        if any(t not in contexts for t in cmd.tags):
            return Response("BAD", "no updating search has this tag")
        for t in cmd.tags:
            del contexts[t]
        return Response("OK", "CANCELUPDATE completed")
