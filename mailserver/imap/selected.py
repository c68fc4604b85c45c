"""Selected-state handlers: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE, CLOSE (RFC 3501 6.4).

Mixed into :class:`~mailserver.imap.state.Session`.  Messages are processed in chunks of
:data:`CHUNK` UIDs: rows (and, only when an item needs them, summaries or decrypted bodies)
are loaded per chunk and the responses are sent before the next chunk is read, so memory stays
bounded on large mailboxes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from mailserver.errors import NotFound
from mailserver.store.audit import Action

from . import commands_selected as s
from . import encoder as enc
from .auditing import AuditedSession, flag_names, hook
from .backend import ImapBackend, No, Response
from .encoder import ResponseCode as RC
from .fetching import FetchPlan, Unsupported, fetch_items, flags_line_maker
from .mailbox import SYSTEM_FLAGS
from .meta import META_CODEC
from .resync import earlier_line, uid_ranges
from .selected_search import CHUNK, SearchCommands

if TYPE_CHECKING:
    from mailserver.directory.service import AccountInfo
    from mailserver.store.audit import AuditHook
    from mailserver.store.imapmeta import ImapStore, Row

    from .mailbox import SelectedMailbox

__all__ = ["SelectedCommands", "No", "SYSTEM_FLAGS", "CHUNK"]

RAW_BATCH_BYTES = 4 << 20
"""FETCH of whole messages: bodies are read (and decrypted) by groups of at most this many
bytes (or one message larger than that), one query per group."""


def _by_size(rows: list[Row]) -> list[list[Row]]:
    """``rows`` in order, cut into groups of at most :data:`RAW_BATCH_BYTES` of messages."""
    groups: list[list[Row]] = [[]]
    total = 0
    for r in rows:
        if groups[-1] and total + r.size > RAW_BATCH_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(r)
        total += r.size
    return groups


def _resp(status: Literal["OK", "NO", "BAD"], text: str, code: RC | None = None) -> Response:
    return Response(status, text, code)


class SelectedCommands(SearchCommands, AuditedSession):
    """Handlers for the selected state (see the module docstring)."""

    backend: ImapBackend
    store: ImapStore
    selected: SelectedMailbox | None
    state: Any
    condstore: bool
    qresync: bool
    account: AccountInfo | None
    send: Callable[[bytes], Awaitable[None]]
    events: asyncio.Event | None

    def _uids(self, seqset: Any, uid: bool) -> list[int]:
        if not uid and seqset.exceeds(self.mb.exists) and self.mb.exists >= 0:
            # RFC 3501 9 seq-number: numbers above the message count are invalid.
            if any(n is not None and n > self.mb.exists for r in seqset.ranges for n in r):
                raise No("message sequence number out of range", RC.CLIENTBUG)
        return self.mb.resolve(self.with_saved(seqset, uid), uid)

    # -- simple ------------------------------------------------------------------------
    async def do_check(self, cmd: s.Check) -> Response:
        return _resp("OK", "CHECK completed")

    async def do_close(self, cmd: s.Close) -> Response:
        mb = self.mb
        self.selected = None
        self.state = "authenticated"
        if not mb.readonly:  # RFC 3501 6.4.2: silent expunge
            await self.backend.store.expunge(mb.folder_id, audit=self._expunged(mb),
                                             account_id=mb.account_id)
        return _resp("OK", "CLOSE completed")

    async def do_unselect(self, cmd: s.Unselect) -> Response:
        self.selected = None
        self.state = "authenticated"
        return _resp("OK", "UNSELECT completed")

    async def do_expunge(self, cmd: s.Expunge) -> Response:
        mb = self.mb
        if mb.readonly:
            raise No("mailbox is read-only", RC.READ_ONLY)
        uids = (mb.resolve(self.with_saved(cmd.uid_set, True), True)
                if cmd.uid_set is not None else None)
        if uids is not None and not uids:
            return _resp("OK", "EXPUNGE completed (nothing to do)")
        gone = await self.backend.store.expunge(mb.folder_id, uids, audit=self._expunged(mb),
                                                origin=self.events, account_id=mb.account_id)
        for line in mb.remove(gone):
            await self.send(line)
        return _resp("OK", "EXPUNGE completed")

    def _expunged(self, mb: SelectedMailbox) -> AuditHook:
        return hook(self._who(), Action.MESSAGE_EXPUNGED, mb.folder_id, mb.name)

    # -- FETCH -------------------------------------------------------------------------
    async def do_fetch(self, cmd: s.Fetch) -> Response:
        mb = self.mb
        try:
            plan = FetchPlan.of(cmd.items)
        except Unsupported as exc:
            return _resp("BAD", str(exc))
        if cmd.changedsince is not None or any(a.name == "MODSEQ" for a in cmd.items):
            self.condstore = True
        uids = self._uids(cmd.seqset, cmd.uid)
        if cmd.vanished and cmd.changedsince is not None:  # RFC 7162 3.2.6
            if not self.qresync:
                return _resp("BAD", "VANISHED without ENABLE QRESYNC")
            ranges = None if cmd.seqset.saved else uid_ranges(cmd.seqset)
            line = await earlier_line(self.store, mb, cmd.changedsince,
                                      ranges if ranges is not None else [(u, u) for u in uids])
            if line is not None:
                await self.send(line)
        set_seen = plan.sets_seen and not mb.readonly
        shows_flags = set_seen or any(a.name == "FLAGS" for a in cmd.items)
        changed: list[Row] | None = None
        if cmd.changedsince is not None:  # RFC 7162 3.1.4: read the few changed rows only
            wanted = set(uids)
            changed = [r for r in await self.store.rows_changed_since(mb.folder_id,
                                                                       cmd.changedsince)
                       if r.uid in wanted]
            uids = [r.uid for r in changed]
        light = flags_line_maker(plan, self.condstore)
        step = CHUNK if light is None else 10 * CHUNK  # rows only: fewer round trips
        for i in range(0, len(uids), step):
            # the sealed summaries come with the rows (one read) when the items need them
            sealed: dict[int, bytes | None] | None = {} if plan.needs_meta else None
            rows = (changed[i:i + step] if changed is not None
                    else await self.store.rows(mb.folder_id, uids[i:i + step], sealed=sealed))
            if light is not None:  # the rows are all it needs: no per-item machinery
                if shows_flags:
                    for line in mb.announce([r.flags for r in rows]):
                        await self.send(line)
                data = b"".join(light(seq, r.uid, r.flags, r.uid in mb.recent, r.modseq)
                                for r in rows if (seq := mb.seq_of(r.uid)) is not None)
                if data:
                    await self.send(data)
                continue
            seen_now: dict[int, tuple[str, int]] = {}
            if set_seen:
                unseen = [r.uid for r in rows if "\\Seen" not in r.flags.split()]
                if unseen:
                    now_seen, _ = await self.backend.store.store_flags(
                        mb.folder_id, unseen, ["\\Seen"], "add", origin=self.events,
                        account_id=mb.account_id)
                    for m in now_seen:
                        seen_now[m.uid] = (" ".join(sorted(m.flags)), m.modseq)
                        mb.reported[m.uid] = m.modseq
            metas = (await self.store.metas(self.account_id, rows, META_CODEC, sealed=sealed)
                     if plan.needs_meta else {})
            if shows_flags:  # RFC 3501 7.2.6: new keywords are announced first
                for line in mb.announce([*(r.flags for r in rows),
                                         *(f for f, _ in seen_now.values())]):
                    await self.send(line)
            for group in _by_size(rows) if plan.needs_raw else [rows]:
                raws = await self.store.raws([r.id for r in group]) if plan.needs_raw else {}
                for r in group:
                    seq = mb.seq_of(r.uid)
                    if seq is None:
                        continue
                    flags, modseq = seen_now.get(r.uid, (r.flags, r.modseq))
                    meta = metas.get(r.id)
                    raw = raws.get(r.id)
                    if (plan.needs_meta and meta is None) or (plan.needs_raw and raw is None):
                        continue  # expunged by another session while we were reading
                    items = fetch_items(
                        plan, uid=r.uid, flags=flags, recent=r.uid in mb.recent,
                        internaldate=r.internaldate, size=r.size, modseq=modseq,
                        summary=meta.summary if meta else None,
                        header=meta.header if meta else None,
                        raw=raw, add_flags=r.uid in seen_now, add_modseq=self.condstore)
                    await self.send(enc.fetch(seq, items))
        return _resp("OK", "FETCH completed")

    # -- STORE -------------------------------------------------------------------------
    async def do_store(self, cmd: s.Store) -> Response:
        mb = self.mb
        if mb.readonly:
            raise No("mailbox is read-only", RC.READ_ONLY)
        if cmd.unchangedsince is not None:
            self.condstore = True
        uids = self._uids(cmd.seqset, cmd.uid)
        mode = {"replace": "set", "add": "add", "remove": "remove"}[cmd.mode]
        flags = [f for f in cmd.flags if f.lower() != "\\recent"]
        deletes = mode != "remove" and any(f.lower() == "\\deleted" for f in flags)
        audit = hook(self._who(), Action.MESSAGE_DELETED if deletes else Action.FLAGS_CHANGED,
                     mb.folder_id, mb.name, extra={"flags": flag_names(flags), "mode": mode})
        # Not woken by its own change (origin): it reports the change itself, here.
        changed, failed = await self.backend.store.store_flags(
            mb.folder_id, uids, flags, mode, cmd.unchangedsince, audit=audit,
            origin=self.events, account_id=mb.account_id)
        for m in changed:
            mb.reported[m.uid] = m.modseq
        if not cmd.silent:
            by_uid = {m.uid: (" ".join(sorted(m.flags)), m.modseq) for m in changed}
            failed_set = set(failed)
            others = [u for u in uids if u not in by_uid and u not in failed_set]
            for r in await self.store.rows(mb.folder_id, others):
                by_uid[r.uid] = (r.flags, r.modseq)
            for flags_line in mb.announce(fl for fl, _ in by_uid.values()):  # RFC 3501 7.2.6
                await self.send(flags_line)
            for uid in sorted(by_uid):
                fl, modseq = by_uid[uid]
                line = mb.flag_update(uid, fl, modseq, with_uid=cmd.uid,
                                      with_modseq=self.condstore)
                if line is not None:
                    await self.send(line)
        elif self.condstore:  # RFC 7162 3.1.3 example 3: .SILENT still reports MODSEQ
            for m in sorted(changed, key=lambda m: m.uid):
                if (seq := mb.seq_of(m.uid)) is not None:
                    items: list[tuple[str, enc.Value]] = [("UID", m.uid)] if cmd.uid else []
                    items.append(("MODSEQ", enc.Raw(b"(%d)" % m.modseq)))
                    await self.send(enc.fetch(seq, items))
        if cmd.silent:  # new keywords, as the poll after the change would have told them
            for flags_line in mb.announce(m.flags for m in changed):
                await self.send(flags_line)
        if failed:  # RFC 7162 3.1.3
            nums = failed if cmd.uid else [n for u in failed if (n := mb.seq_of(u))]
            return _resp("OK", "conditional STORE failed for some messages",
                         RC.modified(nums))
        return _resp("OK", "STORE completed")

    # -- COPY / MOVE ---------------------------------------------------------------------
    async def do_copy(self, cmd: s.Copy) -> Response:
        return await self._copy(cmd, move=False)

    async def do_move(self, cmd: s.Move) -> Response:
        if self.mb.readonly:
            raise No("mailbox is read-only", RC.READ_ONLY)
        return await self._copy(cmd, move=True)

    async def _copy(self, cmd: s.Copy, *, move: bool) -> Response:
        mb = self.mb
        uids = self._uids(cmd.seqset, cmd.uid)
        try:
            dst = await self.backend.store.get_folder(self.account_id, cmd.mailbox)
        except NotFound:
            raise No("no such mailbox", RC.TRYCREATE) from None
        verb = "MOVE" if move else "COPY"
        if not uids:
            return _resp("OK", f"{verb} completed (no messages)")
        audit = hook(self._who(), Action.MESSAGE_MOVED if move else Action.MESSAGE_COPIED,
                     mb.folder_id, mb.name, to=(dst.id, dst.name))
        pairs = await self.backend.store.copy(mb.folder_id, uids, dst.id, move=move,
                                              audit=audit, account_id=mb.account_id)
        code = enc.code_copyuid(dst.uidvalidity, [p[0] for p in pairs],
                                [p[1] for p in pairs]) if pairs else None
        if move:
            if code is not None:  # RFC 6851 4.3: COPYUID in an untagged OK before EXPUNGEs
                await self.send(enc.untagged("OK", "moved", code=code))
            for line in mb.remove([p[0] for p in pairs]):
                await self.send(line)
            return _resp("OK", "MOVE completed")
        return _resp("OK", "COPY completed", code)
