"""Protocol-neutral domain errors.

The tree::

    MssanteError
    ├── ConfigError            invalid configuration (all problems listed at once)
    ├── ValidationError        bad user input (identifier, address, password...)
    │   └── IdentifierError    RPPS / ADELI / INS failed its format or check digit
    ├── DirectoryError
    │   ├── UnknownAddress     no mailbox at that address
    │   ├── AlreadyExists      address or identifier already registered
    │   ├── AuthError          authentication refused (bad credentials, locked, not allowed)
    │   └── TransitionRefused  a lifecycle event not possible now (carries a lifecycle.Refusal)
    ├── PolicyDenied           the send policy refused (carries a policy.Reason)
    ├── SchemaMismatch         the database schema is not this release's (migrate, or newer)
    └── StoreError             storage failure (database or blobs); server-side, retryable
        ├── NotFound           the object does not exist
        ├── KeyDestroyed       the mailbox data key was destroyed (crypto-shredded)
        └── StorageFull        no space left (disk, quota, "database or disk is full")

Domain errors carry no protocol codes: each front end maps them through its own table
(``smtp/replies.py``, the IMAP state machine, the webmail views).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MssanteError",
    "ConfigError",
    "ValidationError",
    "IdentifierError",
    "DirectoryError",
    "UnknownAddress",
    "AlreadyExists",
    "AuthError",
    "TransitionRefused",
    "PolicyDenied",
    "SchemaMismatch",
    "StoreError",
    "NotFound",
    "KeyDestroyed",
    "StorageFull",
]


class MssanteError(Exception):
    """Root of every error raised by this project."""


class ConfigError(MssanteError):
    """Invalid configuration. ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


class ValidationError(MssanteError):
    """Bad input from a user or an administrator."""


class IdentifierError(ValidationError):
    """A national identifier (RPPS, ADELI, INS) is malformed or fails its check digit."""


class DirectoryError(MssanteError):
    """Directory lookups and updates."""


class UnknownAddress(DirectoryError):
    """No mailbox exists at this address."""


class AlreadyExists(DirectoryError):
    """The address or identifier is already registered."""


class AuthError(DirectoryError):
    """Authentication refused. ``locked`` tells a temporary lockout apart from bad credentials."""

    def __init__(self, text: str, *, locked: bool = False, not_allowed: bool = False) -> None:
        super().__init__(text)
        self.locked = locked
        self.not_allowed = not_allowed


class TransitionRefused(DirectoryError):
    """An account lifecycle event refused in the account's state (``mailserver.lifecycle``).

    ``state`` and ``event`` are the values involved, ``refusal`` a ``lifecycle.Refusal``."""

    def __init__(self, text: str, *, state: str, event: str, refusal: Any) -> None:
        super().__init__(text)
        self.state = state
        self.event = event
        self.refusal = refusal


class PolicyDenied(MssanteError):
    """The send policy refused a sender/recipient pair."""

    def __init__(self, reason: Any, text: str = "") -> None:
        super().__init__(text or str(reason))
        self.reason = reason


class SchemaMismatch(MssanteError):
    """The database schema is behind this release (run ``mssante migrate``) or ahead of it."""


class StoreError(MssanteError):
    """A storage failure (database or blob store)."""


class NotFound(StoreError):
    """The requested object does not exist."""


class KeyDestroyed(StoreError):
    """The mailbox's data key has been destroyed: its data can no longer be read."""


class StorageFull(StoreError):
    """The storage has no space left (ENOSPC/EDQUOT, SQLite SQLITE_FULL, PostgreSQL 53100).

    Retryable once space is freed; front ends answer it apart from other store errors."""
