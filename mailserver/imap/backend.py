"""What the IMAP front end receives, and the responses its handlers return.

:class:`ImapBackend` holds the narrow collaborators the composition root gives the IMAP server
(its config slice, the mail store, the directory for login, the mailbox change events).
:class:`Response` and :class:`No` are shared by the session (:mod:`.state`) and its
selected-state handlers (:mod:`.selected`), so neither imports the other's module for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from mailserver.config import ImapConfig
from mailserver.directory.service import Directory
from mailserver.store.audit import AuditTrail
from mailserver.store.events import MailboxEvents
from mailserver.store.folder_uids import KnownUids
from mailserver.store.imapmeta import DecodedSummaries
from mailserver.store.mailstore import MailStore

from . import encoder as enc
from .encoder import ResponseCode as RC

__all__ = ["ImapBackend", "Response", "No", "Action", "Send"]

Action = Literal["starttls", "challenge", "idle", "logout", "compress"]
Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class ImapBackend:
    """The collaborators of the IMAP server."""

    config: ImapConfig
    store: MailStore
    directory: Directory
    events: MailboxEvents
    audit: AuditTrail
    summaries: DecodedSummaries = field(default_factory=DecodedSummaries)
    """Decoded message summaries shared by the sessions of this process."""
    known_uids: KnownUids = field(default_factory=KnownUids)
    """The UIDs of large folders, shared by the sessions of this process (SELECT)."""


@dataclass(frozen=True)
class Response:
    """The tagged completion of a command, plus what the driver must do next."""

    status: Literal["OK", "NO", "BAD"]
    text: str
    code: RC | None = None
    action: Action | None = None

    def encode(self, tag: str) -> bytes:
        """The tagged line."""
        return enc.tagged(tag, self.status, self.text, self.code)


class No(Exception):
    """Raised by a handler to answer ``NO [code] text``."""

    def __init__(self, text: str, code: RC | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
