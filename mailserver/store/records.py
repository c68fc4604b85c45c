"""Values of the mail store (folders, messages, prepared appends) and pure helpers."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Unpack

from sqlalchemy import Row

from mailserver.store.models import Folder

__all__ = [
    "DEFAULT_FOLDERS",
    "SEEN",
    "FolderInfo",
    "MessageInfo",
    "Prepared",
    "SharedContent",
    "AppendResult",
    "AppendItem",
    "message_id_hash",
    "normalise_flags",
    "keywords_of",
    "merge_keywords",
    "new_uidvalidity",
    "as_utc",
    "utc",
    "chunks",
]

DEFAULT_FOLDERS: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
    ("Junk", "\\Junk"),
)

SEEN = "\\Seen"


def message_id_hash(message_id: str) -> str:
    """Index key of a Message-ID (hashed: the store keeps no header text in clear)."""
    return hashlib.sha256(message_id.strip().strip("<>").lower().encode()).hexdigest()


def normalise_flags(flags: Iterable[str]) -> str:
    """Sorted, de-duplicated flags; system flags capitalised (RFC 3501 2.3.2).

    ``\\Recent`` is never stored.
    """
    out: set[str] = set()
    for flag in flags:
        if not flag:
            continue
        if flag.startswith("\\"):
            cap = flag[1:].capitalize()
            if cap == "Recent":
                continue
            out.add("\\" + cap)
        else:
            out.add(flag)
    return " ".join(sorted(out))


def keywords_of(flags: Iterable[str]) -> set[str]:
    """The keywords (RFC 3501 2.3.2: flags not starting with a backslash) among ``flags``."""
    return {f for f in flags if f and not f.startswith("\\")}


def merge_keywords(recorded: str | None, flags: Iterable[str]) -> str | None:
    """``folders.keywords`` with the keywords of ``flags`` added; None if nothing to change.

    NULL stays NULL (not recorded yet: the keywords are derived from the messages, which
    include the new ones)."""
    if recorded is None:
        return None
    known = set(recorded.split())
    new = keywords_of(flags) - known
    return " ".join(sorted(known | new)) if new else None


def new_uidvalidity() -> int:
    # RFC 3501 2.3.1.1: strictly increasing across re-creations; seconds since epoch plus noise.
    return (int(time.time()) & 0x7FFFFFFF) ^ random.randint(0, 0xFF)  # noqa: S311


@dataclass(frozen=True)
class FolderInfo:
    id: int
    account_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    message_count: int
    unseen_count: int
    recent_uid: int = 0
    """\\Recent already claimed up to this UID (RFC 3501 2.3.2)."""
    keywords: str | None = None
    """Keywords recorded for the folder (space-separated), None if not recorded yet."""

    @classmethod
    def of(cls, f: Folder | Row[Unpack[tuple[Any, ...]]]) -> FolderInfo:
        """From the mapped object or from a row of the folders table's columns."""
        return cls(f.id, f.account_id, f.name, f.special_use, f.uidvalidity, f.uidnext,
                   f.highestmodseq, f.subscribed, f.message_count, f.unseen_count,
                   f.recent_uid or 0, f.keywords)


@dataclass(frozen=True)
class MessageInfo:
    id: int
    folder_id: int
    uid: int
    modseq: int
    flags: frozenset[str]
    internaldate: datetime
    size: int
    conversation_id: int | None


@dataclass(frozen=True)
class Prepared:
    """A message sealed for one account, ready to be appended in a transaction."""

    account_id: int
    size: int
    storage_key: str
    content_enc: bytes | None
    subject_enc: bytes | None
    from_enc: bytes | None
    message_id_hash: str | None
    sent_date: datetime | None
    content_key_enc: bytes | None = None
    """For a shared blob: the message's content key, sealed with this account's key."""
    meta_enc: bytes | None = None
    """The sealed IMAP summary when known at append time (see :mod:`imapmeta`), else None."""


@dataclass(frozen=True)
class SharedContent:
    """A large message sealed once under its own random content key and written once as a blob,
    for several accounts (every recipient here and the sender's Sent copy). Each account's row
    holds the content key sealed with that account's data key, so destroying one account's key
    still shreds that account's access, and the blob goes when its last row goes."""

    storage_key: str
    content_key: bytes


@dataclass(frozen=True)
class AppendResult:
    message_id: int
    folder_id: int
    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class AppendItem:
    """One message of a multi-message append (the octets and what is sealed beside them)."""

    raw: bytes
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None
    subject: str | None = None
    from_display: str | None = None
    message_id: str | None = None


def chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def as_utc(dt: datetime | None) -> datetime:
    """Store instants in UTC: SQLite keeps no offset, so a local time would shift."""
    if dt is None:
        return datetime.now(UTC)
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
