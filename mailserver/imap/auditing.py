"""The audit rows of IMAP commands: one row per command at most, only for body reads (FETCH of
a body part), deletions (STORE \\Deleted, EXPUNGE, CLOSE's silent expunge) and MOVE/COPY, with
the UID count and range, never one row per message. Folder names chosen by a user are not
stored: the default folders' names (their special-use role), else ``other`` and the folder id.

The session calls :func:`before` ahead of the handler (cheap: a verb test, and the UID set the
handler resolves anyway) and :func:`record` after an ``OK``; the row is written by the audit
trail's group-committed writer without holding the client's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailserver.store.audit import Action, AuditEvent, AuditTrail, Channel, Origin
from mailserver.store.records import DEFAULT_FOLDERS

from . import commands as c
from . import commands_selected as s
from .fetchspec import FetchAttr
from .mailbox import SelectedMailbox

__all__ = ["Note", "before", "record", "folder_role"]

_ROLES = {name.upper(): name for name, _special in DEFAULT_FOLDERS}


@dataclass(frozen=True)
class Note:
    action: Action
    folder_id: int
    folder: str
    uids: tuple[int, ...] | None
    exists: int
    to_folder: str | None = None


def folder_role(name: str) -> str:
    """A default folder's name, else ``other`` (a user's folder name is not recorded)."""
    return _ROLES.get(name.upper(), "other")


def _reads_body(a: FetchAttr) -> bool:
    if a.name in ("RFC822", "RFC822.TEXT"):
        return True
    sec = a.section
    return (a.name in ("BODY", "BINARY") and sec is not None
            and (bool(sec.parts) or not (sec.specifier or "").startswith("HEADER")))


def _action(cmd: c.Command) -> Action | None:
    if isinstance(cmd, s.Fetch):
        return Action.MESSAGE_READ if any(_reads_body(a) for a in cmd.items) else None
    if isinstance(cmd, s.Store):
        deleted = any(f.lower() == "\\deleted" for f in cmd.flags)
        return Action.MESSAGE_DELETED if deleted and cmd.mode != "remove" else None
    if isinstance(cmd, s.Move):
        return Action.MESSAGE_MOVED
    if isinstance(cmd, s.Copy):
        return Action.MESSAGE_COPIED
    if isinstance(cmd, s.Expunge | s.Close):
        return Action.MESSAGE_EXPUNGED
    return None


def before(mb: SelectedMailbox | None, cmd: c.Command) -> Note | None:
    """What to record if ``cmd`` succeeds (None: nothing)."""
    if mb is None or (action := _action(cmd)) is None:
        return None
    if mb.readonly and isinstance(cmd, s.Close):
        return None  # RFC 3501 6.4.2: no expunge from a read-only mailbox
    seqset: Any = getattr(cmd, "seqset", None)
    try:
        uids = tuple(mb.resolve(seqset, bool(getattr(cmd, "uid", False)))) \
            if seqset is not None else None
    except Exception:  # noqa: BLE001 - the handler answers a bad set itself
        return None
    to = folder_role(cmd.mailbox) if isinstance(cmd, s.Copy) else None
    return Note(action, mb.folder_id, folder_role(mb.name), uids, mb.exists, to)


def record(trail: AuditTrail, note: Note, *, account_id: int, address: str, client: str,
           mb: SelectedMailbox | None) -> None:
    """Append the row of a command that succeeded."""
    details: dict[str, object] = {"folder": note.folder, "folder_id": note.folder_id}
    if note.to_folder is not None:
        details["to_folder"] = note.to_folder
    if note.uids is not None:
        details["count"] = len(note.uids)
        if note.uids:
            details.update(first_uid=min(note.uids), last_uid=max(note.uids))
    elif mb is not None:  # EXPUNGE: what left the session's view
        details["count"] = max(0, note.exists - mb.exists)
    trail.append_soon(AuditEvent(note.action, Origin(Channel.IMAP, client or None), account_id,
                                 address, "ok", details))
