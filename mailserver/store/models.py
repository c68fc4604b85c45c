"""SQLAlchemy 2 models of the mail store and the directory.

Every column holding message content, subjects, display names or patient personal data is
ciphertext (``*_enc``, sealed with the owning account's data key, see ``crypto.py``). Columns in
clear are identifiers needed for routing and indexing: addresses, kinds, RPPS numbers (public),
flags, sizes, dates, UIDs. Patients' addresses contain their INS: that is the national rule for
the address, and it is needed to route mail.

Other packages add their own tables on the same :class:`Base` in their own modules of this
package (queue, documents...), so ``Base.metadata`` holds everything (the schema itself is made by
``mailserver.migrations``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "ID",
    "Account",
    "MailboxKey",
    "KeyGeneration",
    "Folder",
    "OrphanSubscription",
    "Message",
    "UNSEEN_WHERE",
    "Conversation",
    "ConversationParty",
    "Job",
    "DirectoryEntry",
]


class Base(DeclarativeBase):
    pass


ID = BigInteger().with_variant(Integer(), "sqlite")
"""Surrogate keys and every column naming one: BIGINT on PostgreSQL (int4's 2.1 G values run
out at national volume: audit_events within a year, docs/SCALING.md), INTEGER on SQLite, where
integers are already 64-bit and ``INTEGER PRIMARY KEY`` must stay the rowid alias. A column
with a ``ForeignKey`` and no type takes the referenced key's."""


class Account(Base):
    """A mailbox hosted here: a professional (PER), an organisation (ORG), an application (APP)
    or a patient."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "pro" | "patient"
    bal_type: Mapped[str | None] = mapped_column(String(3))  # PER | ORG | APP (professionals)
    rpps: Mapped[str | None] = mapped_column(String(11), index=True)
    ins: Mapped[str | None] = mapped_column(String(15), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))  # professionals only (public data)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # patients: sealed
    profession: Mapped[str | None] = mapped_column(String(8))
    structure_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    login_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    provisional_code_hash: Mapped[str | None] = mapped_column(String(200))
    provisional_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contact_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed JSON email/phone
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    open_deadline: Mapped[date | None] = mapped_column(Date, index=True)
    """Pending patients: the last day to oppose (see ``mailserver.lifecycle``)."""
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Last successful login, any protocol (kept to the hour; ``store/inactivity.py``)."""
    inactive_notice_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Professionals: when the inactivity notice was sent (cleared by a login)."""
    inactive_marked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Professionals: when the mailbox was marked for deletion as inactive (cleared by a
    login)."""
    conversation_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Patients: how many conversations they have (the inbox's page count without counting
    them), kept by ``Conversations.create_in`` and the erasure of the space."""


class MailboxKey(Base):
    """The account's data key, wrapped by the master key. ``wrapped`` NULL = shredded."""

    __tablename__ = "mailbox_keys"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KeyGeneration(Base):
    """Generation counters (``store/generations.py``). Row 1: bumped by every crypto-shredding,
    in the same transaction; row 2: by every account write of the directory.

    Every process keeps unwrapped data keys in memory; reading this one row tells it cheaply
    whether any key was destroyed since (by the ``mssante keys shred`` command or another
    server process), so a shredded key is never served from a cache.
    """

    __tablename__ = "key_generation"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class Folder(Base):
    """An IMAP mailbox (folder). UIDs only grow; UIDVALIDITY changes only if a folder is
    recreated under the same name (RFC 3501 2.3.1.1)."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    special_use: Mapped[str | None] = mapped_column(String(16))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger, default=1)
    highestmodseq: Mapped[int] = mapped_column(BigInteger, default=1)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    unseen_count: Mapped[int] = mapped_column(Integer, default=0)
    recent_uid: Mapped[int | None] = mapped_column(BigInteger)
    """\\Recent claimed up to this UID by read-write SELECTs (RFC 3501 2.3.2); NULL = none."""
    keywords: Mapped[str | None] = mapped_column(Text)
    """Keywords ever used in the folder, space-separated (for the IMAP FLAGS response);
    NULL = not recorded yet, derive them from the messages."""
    vanished_floor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Expunged-UID tombstones at or below this modseq may have been pruned
    (``store/vanished.py``); 0 = none was."""


class OrphanSubscription(Base):
    """A subscribed name with no folder (RFC 3501 6.3.6: deleting a mailbox does not remove
    its subscription). Subscriptions of existing folders are ``folders.subscribed``; the two
    never hold the same name (create and delete move a subscription between them)."""

    __tablename__ = "orphan_subscriptions"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))


#: "The message has no \\Seen flag", as each engine writes it: the predicate of the partial
#: index ``ix_messages_folder_unseen`` and, word for word, of the queries meant to use it (both
#: engines use a partial index only for a query that repeats its predicate). A substring test
#: is exact here: no flag but \\Seen contains "\\Seen" (keywords are atoms, without "\\").
UNSEEN_WHERE = {"postgresql": "strpos(flags, '\\Seen') = 0",
                "sqlite": "instr(flags, '\\Seen') = 0"}


class Message(Base):
    """One stored message: the exact received bytes (sealed), inline or as a blob."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        Index("ix_messages_folder_modseq", "folder_id", "modseq"),
        Index("ix_messages_account_msgid", "account_id", "message_id_hash"),
        # SELECT's [UNSEEN n]: the lowest unseen UID without walking the read messages.
        Index("ix_messages_folder_unseen", "folder_id", "uid",
              postgresql_where=text(UNSEEN_WHERE["postgresql"]),
              sqlite_where=text(UNSEEN_WHERE["sqlite"])),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[str] = mapped_column(Text, default="")  # space-separated, sorted
    internaldate: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    size: Mapped[int] = mapped_column(Integer)
    content_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    blob_key: Mapped[str] = mapped_column(String(64))
    """The message's storage key: its blob's name when large, and part of the associated
    data of all its ciphertexts."""
    content_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """For a blob shared between accounts: its content key sealed with this account's key."""
    subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    from_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    meta_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # cached IMAP summary
    message_id_hash: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    sent_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Conversation(Base):
    """A thread between a patient and professionals, started by a professional (or by the
    patient towards an allowed pharmacy). ``closed`` ends the patient's right to reply."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    patient_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    started_by: Mapped[str] = mapped_column(String(320))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # last activity
    # The inbox index (see conversations.py): what a list page shows, kept up to date in the
    # transactions that change it, so a page costs one indexed query whatever the mailbox size.
    # NULL counts: not indexed yet (a database from before the index; built at start-up).
    message_count: Mapped[int | None] = mapped_column(Integer)
    unread_count: Mapped[int | None] = mapped_column(Integer)
    subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    correspondent_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_conversations_patient_updated", "patient_account_id",
                            "updated_at"),)


class ConversationParty(Base):
    """An address the patient may write to inside a conversation."""

    __tablename__ = "conversation_parties"
    __table_args__ = (UniqueConstraint("conversation_id", "address"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    professional: Mapped[str] = mapped_column(String(320))
    """The professional whose message added this party (for [FIN] closing)."""


class Job(Base):
    """Durable background work created in the same transaction as the message it is about
    (filing documents, notifying a patient, sending a receipt). Retried until done."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_due", "state", "not_before"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    message_id: Mapped[int | None] = mapped_column(ID)
    payload_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DirectoryEntry(Base):
    """A row of the national MSSanté directory extraction (public data): mailboxes hosted by
    any operator, keyed by address."""

    __tablename__ = "directory_entries"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    bal_type: Mapped[str] = mapped_column(String(3))
    id_pp: Mapped[str | None] = mapped_column(String(20), index=True)
    id_nat_pp: Mapped[str | None] = mapped_column(String(21))
    structure_id: Mapped[str | None] = mapped_column(String(32))
    last_name: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    profession: Mapped[str | None] = mapped_column(String(8))
    profession_label: Mapped[str | None] = mapped_column(String(200))
    specialty: Mapped[str | None] = mapped_column(String(200))
    structure_name: Mapped[str | None] = mapped_column(String(300))
    row_hash: Mapped[str] = mapped_column(String(64))
