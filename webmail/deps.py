"""What the webmail receives from the composition root.

The webmail knows no ``Services`` and imports no wiring module: :class:`WebmailDeps` holds the
narrow collaborators it uses, built by the root (``mailserver/runtime.py``). The seams it only
calls through (read receipts, personal mail, the dossier bridge's filings) are protocols
declared here, so the webmail never imports the packages that fill them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailserver.config import ListenConfig, WebmailConfig
from mailserver.delivery import Delivery
from mailserver.directory.service import AccountInfo, Directory
from mailserver.mailer import PersonalMail
from mailserver.store.conversations import Conversations
from mailserver.store.mailstore import MailStore
from mailserver.store.webmail_queries import WebmailQueries
from webmail.store import WebmailStore

__all__ = ["WebmailDeps", "WebmailSettings", "ReadReceipts", "PersonalMailer",
           "DocumentFilings"]


class ReadReceipts(Protocol):
    """Sends the ``displayed`` MDN (RFC 8098) of a message the patient opened, once."""

    async def read_receipt(self, reader: AccountInfo, message_id: int) -> bool: ...


class PersonalMailer(Protocol):
    """Mail to a patient's personal address (one-time codes, reset links)."""

    async def send(self, mail: PersonalMail) -> None: ...


class DocumentFilings(Protocol):
    """What the dossier bridge filed from a message: (filename, label shown to the patient)."""

    async def filings_for_message(self, patient_id: int, message_id: int
                                  ) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class WebmailSettings:
    """The configuration values the webmail reads."""

    webmail: WebmailConfig
    domain: str
    patient_domain: str
    hostname: str
    extra_domains: tuple[str, ...]
    listen: ListenConfig
    """The listeners actually bound (announced to mail clients by autoconfig)."""
    lockout_seconds: int = 300
    """How long the directory locks a name after too many failed logins (``[auth]``)."""


@dataclass(frozen=True)
class WebmailDeps:
    """The webmail's collaborators (see the module docstring)."""

    settings: WebmailSettings
    directory: Directory
    store: MailStore
    conversations: Conversations
    delivery: Delivery
    queries: WebmailQueries
    webstore: WebmailStore
    receipts: ReadReceipts
    mailer: PersonalMailer
    documents: DocumentFilings | None = None
