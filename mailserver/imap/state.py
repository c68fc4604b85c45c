"""IMAP session state machine: the ``ALLOWED[state]`` table and ``do_<verb>`` handlers.

Theory of operation
-------------------
RFC 3501 3: a connection is in one of four states.  :data:`ALLOWED` says which verbs each
state accepts; anything else is answered ``BAD`` with the reason.  :meth:`Session.handle` runs
one parsed command and returns a :class:`Response` (the tagged status and, for STARTTLS,
AUTHENTICATE, IDLE and LOGOUT, an action for the driver).  Untagged data is handed to the
``send`` callable given by the driver (:mod:`.server`, the only module writing to the socket),
so large FETCH answers stream instead of piling up in memory.

IMAP4rev1 and IMAP4rev2 (RFC 9051) are both offered; a session speaks rev1 until the client
sends ``ENABLE IMAP4rev2`` (RFC 9051 E.2).  Then: no \\Recent and no RECENT response, no
``[UNSEEN n]`` at SELECT but a LIST response for the mailbox, ``[CLOSED]`` when SELECT
replaces a selection, SEARCH answered with ESEARCH, mailbox names in UTF-8, and DELETE of a
mailbox with children refused with ``[HASCHILDREN]``.

Before each tagged OK the session polls its selected mailbox for changes made by other
sessions or by SMTP delivery (RFC 3501 5.2, 7.3.1, 7.4.1) and sends EXISTS / EXPUNGE /
FETCH FLAGS.  Store errors are mapped to NO responses through :data:`ERROR_MAP`; their text
never reaches the client.  Selected-state commands live in :mod:`.selected`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Literal

from mailserver.errors import AlreadyExists, AuthError, KeyDestroyed, NotFound, StoreError
from mailserver.store.audit import Channel
from mailserver.store.imapmeta import ImapStore
from mailserver.store.mailstore import FolderInfo

from . import auditing
from . import commands as c
from . import commands_selected as s
from . import encoder as enc
from .appending import AppendCommands
from .backend import ImapBackend, No, Response, Send
from .binary import UnknownCte
from .encoder import ResponseCode as RC
from .lexer import InvalidName
from .listing import ListError, extended_entries, list_line, lsub_entries, pattern_regex
from .mailbox import SelectedMailbox, flags_lines
from .resync import resync_lines
from .selected import SelectedCommands

if TYPE_CHECKING:
    from mailserver.directory.service import AccountInfo

__all__ = ["Session", "Response", "ALLOWED", "ERROR_MAP", "capabilities"]

log = logging.getLogger(__name__)

State = Literal["not_authenticated", "authenticated", "selected", "logout"]

_ANY = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
_AUTHED = _ANY | {"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
                  "LIST", "LSUB", "STATUS", "APPEND", "NAMESPACE", "ENABLE", "IDLE",
                  "COMPRESS"}
#: RFC 3501 3, 6: verbs accepted in each state.
ALLOWED: dict[State, frozenset[str]] = {
    "not_authenticated": frozenset(_ANY | {"STARTTLS", "AUTHENTICATE", "LOGIN"}),
    "authenticated": frozenset(_AUTHED),
    "selected": frozenset(_AUTHED | {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH",
                                     "STORE", "COPY", "MOVE", "SORT", "THREAD",
                                     "CANCELUPDATE"}),
    "logout": frozenset(),
}

#: RFC 3501 7.4.1: no EXPUNGE while answering these (unless in their UID form).
_NO_EXPUNGE = (s.Fetch, s.Store, s.Search, s.Sort, s.Thread)

#: Domain errors → (code, text): one table for the IMAP front end (STYLE 4).
ERROR_MAP: tuple[tuple[type[Exception], RC, str], ...] = (
    (NotFound, RC.NONEXISTENT, "no such mailbox"),
    (UnknownCte, RC("UNKNOWN-CTE"), "cannot decode this part's Content-Transfer-Encoding"),
    (AlreadyExists, RC.ALREADYEXISTS, "mailbox already exists"),
    (KeyDestroyed, RC.UNAVAILABLE, "this mailbox has been closed"),
    (StoreError, RC.UNAVAILABLE, "the message store is busy, try again"),
)

_BASE_CAPS = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE",
              "NAMESPACE", "UIDPLUS",
              "MOVE", "SPECIAL-USE", "CREATE-SPECIAL-USE", "CHILDREN", "UNSELECT", "CONDSTORE",
              "ESEARCH", "SEARCHRES", "SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT",
              "THREAD=REFERENCES", "LIST-EXTENDED", "LIST-STATUS", "BINARY", "MULTIAPPEND",
              "UTF8=ACCEPT", "ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT", "QRESYNC",
              "COMPRESS=DEFLATE", "CATENATE", "STATUS=SIZE")
_SPECIAL = {"\\Sent", "\\Drafts", "\\Trash", "\\Archive", "\\Junk", "\\All", "\\Flagged"}
_PROTECTED = {"Sent", "Drafts", "Trash", "Archive", "Junk"}  # Delivery files into these by name
# RFC 3501 6.3.8 / RFC 9051 5.1: "%" and "*" are LIST wildcards; a name holding them could
# never be listed on its own, so it is not created (as Dovecot and Cyrus do).
_WILDCARDS = frozenset("%*")
_WILDCARD_TEXT = "mailbox names cannot contain % or *"


def capabilities(*, tls: bool, authenticated: bool, starttls_port: bool) -> list[str]:
    """Capabilities for the current state: advertise only what works (RFC 3501 7.2.1)."""
    caps = list(_BASE_CAPS)
    if not authenticated:
        if not tls:
            caps += ["STARTTLS", "LOGINDISABLED"] if starttls_port else []
        else:
            caps.append("AUTH=PLAIN")
    return caps




class Session(AppendCommands, SelectedCommands):
    """One client's IMAP session (state, login, selected mailbox)."""

    def __init__(self, backend: ImapBackend, send: Send, *, tls: bool, starttls_port: bool,
                 peer: str = "", conn_id: str = "-") -> None:
        self.backend = backend
        self.store = ImapStore(backend.store, backend.summaries, backend.known_uids)
        self.send = send
        self.tls = tls
        self.starttls_port = starttls_port
        self.peer = peer
        self.conn_id = conn_id
        self.state: State = "not_authenticated"
        self.account: AccountInfo | None = None
        self.selected: SelectedMailbox | None = None
        self.condstore = False
        self.qresync = False  # RFC 7162 3.2.3: ENABLE QRESYNC
        self.utf8 = False  # RFC 6855: ENABLE UTF8=ACCEPT
        self.rev2 = False  # RFC 9051: ENABLE IMAP4rev2
        self.compressed = False  # RFC 4978: COMPRESS DEFLATE done
        self.saved: list[int] = []  # RFC 5182 $: UIDs saved by SEARCH RETURN (SAVE)
        self.events: asyncio.Event | None = None
        self._polled_at = 0.0  # time.monotonic() of the last poll (see notify)
        self._deferred = False  # the last poll could not report expunges
        self._auth_tag = ""
        #: True while the client has sent more than the command being handled (set by the
        #: connection; see :meth:`handle`).
        self.input_waiting: Callable[[], bool] = lambda: False

    # -- dispatch -------------------------------------------------------------------------
    @property
    def utf8_names(self) -> bool:
        """Mailbox names travel as UTF-8 (RFC 6855 3, RFC 9051 5.1), not modified UTF-7."""
        return self.utf8 or self.rev2

    def caps(self) -> list[str]:
        """Current capability list."""
        return capabilities(tls=self.tls, authenticated=self.account is not None,
                            starttls_port=self.starttls_port)

    async def handle(self, cmd: c.Command) -> Response:
        """Run one command; untagged responses go through ``send``.

        When the client has already sent more (pipelined commands, :attr:`input_waiting`
        asked once the command is done), what changed in the selected mailbox is told after
        the last command of the pipeline rather than after each (one poll for the lot), and
        never as EXPUNGE while commands wait: they were numbered with the sequence numbers
        the client knew when it sent them (RFC 3501 5.5; Dovecot holds expunges back the
        same way). A pipeline longer than :data:`PIPELINE_POLL_EVERY` seconds still gets
        the other changes (new mail, flags)."""
        verb = cmd.verb
        if verb not in ALLOWED[self.state]:
            return Response("BAD", f"{verb} is not allowed {_STATE_TEXT[self.state]}")
        handler: Callable[[c.Command], Awaitable[Response]] = getattr(self, "do_" + verb.lower())
        invalid = [f.name for f in fields(cmd) if isinstance(getattr(cmd, f.name), InvalidName)]
        if invalid and self.utf8_names:  # RFC 6855 3, RFC 9051 5.1: "R&D" is just that
            cmd = replace(cmd, **{n: str(getattr(cmd, n)) for n in invalid})
        elif invalid:
            # RFC 3501 5.1.3: a name that is not modified UTF-7 names no mailbox; NO, not
            # BAD (which clients take as a protocol error and drop the connection).
            return Response("NO", "invalid mailbox name (not modified UTF-7)", RC.CANNOT)
        note = auditing.before(self.selected, cmd)
        try:
            resp = await handler(cmd)
        except No as exc:
            resp = Response("NO", exc.text, exc.code)
        except Exception as exc:  # noqa: BLE001 - mapped, never shown to the client
            resp = self._error(exc)
        if note is not None and resp.status == "OK" and self.account is not None:
            auditing.record(self._who(), note)
        if resp.status != "BAD" and self.selected is not None and resp.action is None:
            pipelined = self.input_waiting()
            if pipelined and time.monotonic() - self._polled_at < PIPELINE_POLL_EVERY:
                return resp  # the pipeline's last command polls
            await self.notify(allow_expunge=not pipelined and (
                not isinstance(cmd, _NO_EXPUNGE) or getattr(cmd, "uid", False)))
        return resp

    def _error(self, exc: Exception) -> Response:
        for kind, code, text in ERROR_MAP:
            if isinstance(exc, kind):
                log.info("imap[%s]: %s", self.conn_id, type(exc).__name__)
                return Response("NO", text, code)
        log.exception("imap[%s]: internal error", self.conn_id)
        return Response("NO", f"internal server error (connection {self.conn_id})", RC.SERVERBUG)

    async def notify(self, *, allow_expunge: bool = True) -> None:
        """Send what changed in the selected mailbox since the last poll.

        While every change reaches this process's events (PostgreSQL with its listener up),
        the store is read only when the account's event was set since the last poll, or
        when the last poll is :data:`POLL_EVERY` seconds old (belt and braces)."""
        if self.selected is None:
            return
        ev, now = self.events, time.monotonic()
        if ev is not None:
            if (self.backend.events.complete and not ev.is_set()
                    and now - self._polled_at < POLL_EVERY and not self._deferred):
                return
            ev.clear()
        self._polled_at = now
        lines = await self.selected.poll(self.store, allow_expunge=allow_expunge,
                                         condstore=self.condstore)
        # Poll again at the next command only if this one had to hold expunges back.
        self._deferred = self.selected is not None and self.selected.held_back
        if lines is None:  # the folder was deleted or renamed away under us
            self.selected = None
            self.state = "authenticated"
            await self.send(b"* BYE the selected mailbox no longer exists\r\n")
            self.state = "logout"
            return
        for line in lines:
            await self.send(line)
        for line in await self.refresh_contexts():  # RFC 5267 4.3.3: ADDTO after EXISTS
            await self.send(line)

    def close(self) -> None:
        """Release resources held by the session (event subscription)."""
        if self.events is not None and self.account is not None:
            self.backend.events.unsubscribe(self.account.id, self.events)
            self.events = None

    # -- any state ------------------------------------------------------------------------
    async def do_capability(self, cmd: c.Command) -> Response:
        await self.send(enc.untagged("CAPABILITY", " ".join(self.caps())))
        return Response("OK", "CAPABILITY completed")

    async def do_noop(self, cmd: c.Command) -> Response:
        return Response("OK", "NOOP completed")

    async def do_logout(self, cmd: c.Command) -> Response:
        await self.send(enc.bye("logging out"))
        self.state = "logout"
        return Response("OK", "LOGOUT completed", action="logout")

    async def do_id(self, cmd: c.Command) -> Response:
        # RFC 2971 3.3: no personal data in the reply.
        await self.send(b'* ID ("name" "mssante" "vendor" "mssante-server")\r\n')
        return Response("OK", "ID completed")

    # -- not authenticated ------------------------------------------------------------------
    async def do_starttls(self, cmd: c.Command) -> Response:
        if self.tls or not self.starttls_port:
            return Response("BAD", "TLS is already active")
        return Response("OK", "begin TLS negotiation now", action="starttls")

    async def do_login(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Login)
        if not self.tls:
            return Response("NO", "LOGIN is disabled until STARTTLS", RC.PRIVACYREQUIRED)
        return await self._authenticate(cmd.username, cmd.password, "LOGIN")

    async def do_authenticate(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Authenticate)
        if cmd.mechanism != "PLAIN":
            return Response("NO", "only AUTHENTICATE PLAIN is supported", RC.CANNOT)
        if not self.tls:
            return Response("NO", "authentication requires TLS: use STARTTLS first",
                            RC.PRIVACYREQUIRED)
        if cmd.initial_response is None:
            self._auth_tag = cmd.tag
            return Response("OK", "", action="challenge")
        return await self.sasl_plain(cmd.initial_response)

    async def sasl_plain(self, data: bytes) -> Response:
        """Finish AUTHENTICATE PLAIN with the decoded client response (RFC 4616)."""
        parts = data.split(b"\x00")
        if len(parts) != 3:
            return Response("BAD", "malformed PLAIN response")
        authzid, user, password = (p.decode("utf-8", "replace") for p in parts)
        if authzid and authzid.lower() != user.lower():
            return Response("NO", "acting as another user is not allowed", RC.AUTHENTICATIONFAILED)
        return await self._authenticate(user, password, "PLAIN")

    async def _authenticate(self, user: str, password: str, mechanism: str) -> Response:
        try:
            account = await self.backend.directory.authenticate(
                user, password, client=self.peer or None, channel=Channel.IMAP,
                mechanism=mechanism)
        except AuthError as exc:
            if exc.locked:
                return Response("NO", "too many failed attempts, try again later",
                                RC.UNAVAILABLE)
            if exc.not_allowed:
                if await self._is_patient(user):
                    return Response("NO", "patients use the secure webmail, not mail clients",
                                    RC("CONTACTADMIN"))
                return Response("NO", "this account is not open", RC("CONTACTADMIN"))
            return Response("NO", "invalid credentials", RC.AUTHENTICATIONFAILED)
        self.account = account
        self.state = "authenticated"
        self.events = self.backend.events.subscribe(account.id)
        log.info("imap[%s]: login account=%d", self.conn_id, account.id)
        return Response("OK", "logged in", RC.capability(self.caps()))

    async def _is_patient(self, user: str) -> bool:
        d = self.backend.directory
        acct = await d.lookup(user) if "@" in user else await d.by_login(user)
        return acct is not None and acct.kind == "patient"

    # -- authenticated: mailboxes --------------------------------------------------------
    async def do_select(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Select)
        if cmd.qresync is not None and not self.qresync:
            return Response("BAD", "QRESYNC parameter without ENABLE QRESYNC")  # RFC 7162 3.2.5
        if self.selected is not None and (self.qresync or self.rev2):  # RFC 7162 3.2.11
            await self.send(enc.untagged("OK", "previous mailbox closed", code=RC("CLOSED")))
        self.selected = None
        self.state = "authenticated"
        self.saved = []  # RFC 5182 2.1
        readonly = isinstance(cmd, c.Examine)
        folder = await self.backend.store.get_folder(self.account_id, cmd.mailbox)
        if cmd.condstore:
            self.condstore = True
        if self.events is not None:  # what changes from here on is polled for later
            self.events.clear()
        self._polled_at, self._deferred = time.monotonic(), False
        # rev2: no [UNSEEN n] (RFC 9051 6.3.2)
        uids, first_unseen = await self.store.select_uids(folder, first_unseen=not self.rev2)
        mb = SelectedMailbox(folder.id, self.account_id, folder.name, readonly,
                             folder.uidvalidity, uids, folder.highestmodseq,
                             vanished=self.qresync, rev2=self.rev2)
        await mb.claim_recent(self.store, folder.recent_uid)  # RFC 3501 2.3.2
        mb.keywords = set((await self.store.keywords(folder)).split())
        for line in flags_lines(mb.keywords, readonly):
            await self.send(line)
        await self.send(b"* %d EXISTS\r\n" % len(uids))
        if self.rev2:  # RFC 9051 6.3.2: the mailbox's LIST response, no RECENT, no UNSEEN
            names = [f.name for f in await self.backend.store.list_folders(self.account_id)]
            kids = any(n.startswith(folder.name + "/") for n in names)
            attrs = [folder.special_use or "", "\\HasChildren" if kids else "\\HasNoChildren"]
            await self.send(b"* LIST (" + " ".join(a for a in attrs if a).encode() + b') "/" '
                            + enc.mailbox(folder.name, utf8=True) + b"\r\n")
        else:
            await self.send(b"* %d RECENT\r\n" % len(mb.recent))
            if first_unseen is not None and (seq := mb.seq_of(first_unseen)) is not None:
                await self.send(enc.untagged("OK", "first unseen", code=RC.unseen(seq)))
        await self.send(enc.untagged("OK", "UIDs valid", code=RC.uidvalidity(folder.uidvalidity)))
        # A message appended since the folder row was read is already in the view: the
        # predicted next UID is above it.
        uidnext = max(folder.uidnext, uids[-1] + 1 if uids else 1)
        await self.send(enc.untagged("OK", "predicted next UID", code=RC.uidnext(uidnext)))
        await self.send(enc.untagged("OK", "highest", code=RC.highestmodseq(folder.highestmodseq)))
        if cmd.qresync is not None:
            for line in await resync_lines(self.store, mb, cmd.qresync):
                await self.send(line)
        self.selected = mb
        self.state = "selected"
        auditing.selected(self._who(), mb)
        return Response("OK", f"{cmd.verb} completed",
                        RC.READ_ONLY if readonly else RC.READ_WRITE)

    do_examine = do_select

    async def do_create(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Create)
        name = cmd.mailbox.rstrip("/")
        if not name or "//" in name or name.upper() == "INBOX" or len(name) > 400:
            return Response("NO", "invalid mailbox name", RC.CANNOT)
        if _WILDCARDS & set(name):
            return Response("NO", _WILDCARD_TEXT, RC.CANNOT)
        use = cmd.special_use[0] if cmd.special_use else None
        if use is not None and (len(cmd.special_use) > 1 or use not in _SPECIAL):
            return Response("NO", "unsupported special use", RC("USEATTR"))
        existing = {f.name for f in await self.backend.store.list_folders(self.account_id)}
        if name in existing:
            return Response("NO", "mailbox already exists", RC.ALREADYEXISTS)
        await self._create_superiors(name, existing)  # RFC 3501 6.3.3
        await self.backend.store.create_folder(self.account_id, name, use)
        return Response("OK", "CREATE completed")

    async def _create_superiors(self, name: str, existing: set[str]) -> None:
        """Create the missing superior names of ``name`` ("a" and "a/b" for "a/b/c")."""
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in existing and parent.upper() != "INBOX":
                await self.backend.store.create_folder(self.account_id, parent)
                existing.add(parent)

    async def do_delete(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Delete)
        name = cmd.mailbox
        if name == "INBOX" or name in _PROTECTED:
            return Response("NO", "this mailbox cannot be deleted", RC.CANNOT)
        folders = await self.backend.store.list_folders(self.account_id)
        if not any(f.name == name for f in folders):
            return Response("NO", "no such mailbox", RC.NONEXISTENT)
        if any(f.name.startswith(name + "/") for f in folders):  # RFC 9051 7.1 HASCHILDREN
            return Response("NO", "delete the sub-folders first",
                            RC("HASCHILDREN") if self.rev2 else RC.INUSE)
        if self.selected is not None and self.selected.name == name:
            self.selected = None
            self.state = "authenticated"
        await self.backend.store.delete_folder(self.account_id, name)
        return Response("OK", "DELETE completed")

    async def do_rename(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Rename)
        if cmd.old in _PROTECTED or not cmd.new.strip("/") or cmd.new.upper() == "INBOX":
            return Response("NO", "this mailbox cannot be renamed", RC.CANNOT)
        if _WILDCARDS & set(cmd.new):
            return Response("NO", _WILDCARD_TEXT, RC.CANNOT)
        if cmd.new.startswith(cmd.old + "/"):
            return Response("NO", "a mailbox cannot be moved under itself", RC.CANNOT)
        new = cmd.new.rstrip("/")
        await self.backend.store.get_folder(self.account_id, cmd.old)
        await self.backend.store.rename_folder(self.account_id, cmd.old, new)
        # RFC 3501 6.3.5: the superiors of the new name are created, or a hierarchical
        # client (LIST "" "%") could never reach the renamed mailbox.
        existing = {f.name for f in await self.backend.store.list_folders(self.account_id)}
        await self._create_superiors(new, existing)
        return Response("OK", "RENAME completed")

    async def do_subscribe(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Subscribe)
        await self.backend.store.set_subscribed(self.account_id, cmd.mailbox, True)
        return Response("OK", "SUBSCRIBE completed")

    async def do_unsubscribe(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Unsubscribe)
        await self.backend.store.set_subscribed(self.account_id, cmd.mailbox, False)
        return Response("OK", "UNSUBSCRIBE completed")

    async def do_list(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.List)
        if cmd.patterns == ("",):  # RFC 3501 6.3.8: the delimiter and root
            await self.send(b'* LIST (\\Noselect) "/" ""\r\n')
            return Response("OK", "LIST completed")
        store = self.backend.store
        folders = await store.list_folders(self.account_id)
        regexes = [pattern_regex(cmd.reference, p) for p in cmd.patterns]
        orphans = (await store.orphan_subscriptions(self.account_id)
                   if "SUBSCRIBED" in cmd.selection else [])
        try:
            entries = extended_entries([(f.name, f.special_use, f.subscribed) for f in folders],
                                       orphans, regexes, cmd.selection, cmd.return_opts)
        except ListError as exc:
            return Response("BAD", str(exc))
        by_name = {f.name: f for f in folders}
        for e in entries:
            await self.send(list_line("LIST", e, utf8=self.utf8_names))
            if cmd.status_items and e.name in by_name:  # RFC 5819: selectable ones only
                await self._status_line(by_name[e.name], cmd.status_items)
        return Response("OK", "LIST completed")

    async def do_lsub(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Lsub)
        store = self.backend.store
        folders = await store.list_folders(self.account_id)
        entries = lsub_entries([(f.name, f.special_use, f.subscribed) for f in folders],
                               await store.orphan_subscriptions(self.account_id),
                               pattern_regex(cmd.reference, cmd.pattern))
        for e in entries:
            await self.send(list_line("LSUB", e, utf8=self.utf8_names))
        return Response("OK", "LSUB completed")

    async def do_status(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Status)
        folder, recent = await self.backend.store.folder_status(
            self.account_id, cmd.mailbox, recent="RECENT" in cmd.items)
        await self._status_line(folder, cmd.items, recent)
        return Response("OK", "STATUS completed")

    async def _status_line(self, folder: object, items: tuple[str, ...],
                           recent: int | None = None) -> None:
        assert isinstance(folder, FolderInfo)
        values = {"MESSAGES": folder.message_count, "UNSEEN": folder.unseen_count,
                  "UIDNEXT": folder.uidnext, "UIDVALIDITY": folder.uidvalidity,
                  "HIGHESTMODSEQ": folder.highestmodseq}
        if {"SIZE", "DELETED"} & set(items):
            values["SIZE"], values["DELETED"] = await self.store.size_and_deleted(folder.id)
        out = []
        for item in items:
            if item == "RECENT":  # not yet claimed by a read-write SELECT (RFC 3501 2.3.2)
                if recent is None:
                    recent = await self.store.count_above(folder.id, folder.recent_uid)
                out.append(f"RECENT {recent}")
            else:
                out.append(f"{item} {values[item]}")
        await self.send(b"* STATUS " + enc.mailbox(folder.name, utf8=self.utf8_names) + b" ("
                        + " ".join(out).encode() + b")\r\n")

    async def do_namespace(self, cmd: c.Command) -> Response:
        await self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        return Response("OK", "NAMESPACE completed")

    async def do_enable(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Enable)
        enabled = []
        if "CONDSTORE" in cmd.capabilities:
            self.condstore = True
            enabled.append("CONDSTORE")
        if "QRESYNC" in cmd.capabilities:  # RFC 7162 3.2.3: implies CONDSTORE
            self.qresync = self.condstore = True
            if self.selected is not None:
                self.selected.vanished = True
            enabled.append("QRESYNC")
        if "UTF8=ACCEPT" in cmd.capabilities:
            self.utf8 = True
            enabled.append("UTF8=ACCEPT")
        if "IMAP4REV2" in cmd.capabilities:  # RFC 9051 E.2
            self.rev2 = True
            if self.selected is not None:
                self.selected.rev2 = True
                self.selected.recent.clear()
            enabled.append("IMAP4rev2")
        await self.send(enc.untagged("ENABLED", *enabled) if enabled else b"* ENABLED\r\n")
        return Response("OK", "ENABLE completed")

    async def do_compress(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Compress)
        if cmd.mechanism != "DEFLATE":  # RFC 4978 3: an unknown mechanism is BAD
            return Response("BAD", "only COMPRESS DEFLATE is supported")
        if self.compressed:
            return Response("NO", "DEFLATE is already active", RC("COMPRESSIONACTIVE"))
        self.compressed = True
        return Response("OK", "DEFLATE active", action="compress")

    async def do_idle(self, cmd: c.Command) -> Response:
        return Response("OK", "IDLE terminated", action="idle")


PIPELINE_POLL_EVERY = 1.0
"""Seconds between polls while a client keeps commands pipelined (see :meth:`Session.handle`)."""

POLL_EVERY = 5.0
"""Seconds after which a session polls its mailbox even without a change event."""

_STATE_TEXT = {
    "not_authenticated": "before login",
    "authenticated": "without a selected mailbox (SELECT one first)",
    "selected": "in this state",
    "logout": "after LOGOUT",
}

