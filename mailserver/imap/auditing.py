"""The audit rows of IMAP commands: one row per command at most, with the UID count and range,
never one row per message. Folder names chosen by a user are not stored: the default folders'
names (their special-use role), else ``other`` and the folder id; keywords (which a user
names) are recorded as ``keyword``, system flags as they are.

Changes (STORE, EXPUNGE, CLOSE's silent expunge, COPY, MOVE, APPEND) write their row in the
store's transaction through the :class:`~mailserver.store.audit.AuditHook` that :func:`hook`
builds: the row exists when the client reads the tagged OK, and a failed change leaves none.
A change that touches no message records nothing. Reads, which have no transaction (FETCH of
a body part, SELECT, EXAMINE), are batched by the trail within a second (one write a second,
not one per read): the session calls :func:`before` ahead of FETCH and :func:`record` after
its ``OK``, and :func:`selected` after a SELECT or EXAMINE. A FETCH that sets ``\\Seen``
as it reads is recorded by its read row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailserver.store.audit import (
    Action,
    AuditEvent,
    AuditHook,
    AuditTrail,
    Channel,
    Origin,
    uid_details,
)
from mailserver.store.records import DEFAULT_FOLDERS

from . import commands as c
from . import commands_selected as s
from .backend import ImapBackend
from .fetchspec import FetchAttr
from .mailbox import SYSTEM_FLAGS, SelectedMailbox

if TYPE_CHECKING:
    from mailserver.directory.service import AccountInfo

__all__ = ["Who", "AuditedSession", "Note", "before", "record", "hook", "selected",
           "folder_role", "flag_names"]

_ROLES = {name.upper(): name for name, _special in DEFAULT_FOLDERS}
_SYSTEM = {f.lower(): f for f in SYSTEM_FLAGS}


@dataclass(frozen=True)
class Who:
    """The session's account and client, as its rows name them."""

    trail: AuditTrail
    account_id: int
    address: str
    client: str

    def event(self, action: Action, details: Mapping[str, object]) -> AuditEvent:
        return AuditEvent(action, Origin(Channel.IMAP, self.client or None), self.account_id,
                          self.address, "ok", details)


class AuditedSession:
    """Mixed into the session's handler classes: who their rows name."""

    backend: ImapBackend
    account: AccountInfo | None
    peer: str

    def _who(self) -> Who:
        assert self.account is not None
        return Who(self.backend.audit, self.account.id, self.account.address, self.peer)


@dataclass(frozen=True)
class Note:
    action: Action
    folder_id: int
    folder: str
    uids: tuple[int, ...]


def folder_role(name: str) -> str:
    """A default folder's name, else ``other`` (a user's folder name is not recorded)."""
    return _ROLES.get(name.upper(), "other")


def flag_names(flags: Iterable[str]) -> list[str]:
    """System flags as they are, any keyword as ``keyword`` (sorted, once each)."""
    return sorted({_SYSTEM.get(f.lower(), "keyword") for f in flags})


def hook(who: Who, action: Action, folder_id: int, folder: str, *,
         to: tuple[int, str] | None = None, extra: Mapping[str, object] | None = None
         ) -> AuditHook:
    """The row a store change writes in its transaction (none if it touched no message);
    ``to`` is the (id, name) of a COPY or MOVE's destination."""

    def events(uids: Sequence[int]) -> Sequence[AuditEvent]:
        if not uids:
            return ()
        details: dict[str, object] = {"folder": folder_role(folder), "folder_id": folder_id,
                                      **uid_details(uids), **(extra or {})}
        if to is not None:
            details.update(to_folder_id=to[0], to_folder=folder_role(to[1]))
        return (who.event(action, details),)

    return AuditHook(who.trail, events)


def selected(who: Who, mb: SelectedMailbox) -> None:
    """Record a SELECT or EXAMINE (batched: it writes nothing of its own)."""
    who.trail.append_soon(who.event(
        Action.MAILBOX_EXAMINED if mb.readonly else Action.MAILBOX_SELECTED,
        {"folder": folder_role(mb.name), "folder_id": mb.folder_id, "count": mb.exists}))


def _reads_body(a: FetchAttr) -> bool:
    if a.name in ("RFC822", "RFC822.TEXT"):
        return True
    sec = a.section
    return (a.name in ("BODY", "BINARY") and sec is not None
            and (bool(sec.parts) or not (sec.specifier or "").startswith("HEADER")))


def before(mb: SelectedMailbox | None, cmd: c.Command) -> Note | None:
    """What to record if ``cmd`` succeeds: a FETCH reading a body (None: nothing)."""
    if mb is None or not isinstance(cmd, s.Fetch) or not any(_reads_body(a)
                                                             for a in cmd.items):
        return None
    seqset: Any = cmd.seqset
    try:
        uids = tuple(mb.resolve(seqset, cmd.uid))
    except Exception:  # noqa: BLE001 - the handler answers a bad set itself
        return None
    return Note(Action.MESSAGE_READ, mb.folder_id, folder_role(mb.name), uids)


def record(who: Who, note: Note) -> None:
    """Append (batched) the row of a read that succeeded."""
    who.trail.append_soon(who.event(note.action, {
        "folder": note.folder, "folder_id": note.folder_id, **uid_details(note.uids)}))
