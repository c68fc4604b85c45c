"""Tables of the webmail: sessions, rate-limit counters, reset tokens, the (sealed) Vitale
card serial numbers recorded at first connection, the (sealed) renderings of the messages a
patient has opened, and the (sealed) changes of contact email waiting for their code.

Nothing here is readable by someone holding only the database: session and reset tokens are
stored as SHA-256 digests (a stolen table cannot be replayed), one-time codes as keyed digests
bound to their session, and the Vitale serial and the message renderings are sealed with the
patient's data key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.store.models import ID, Base

__all__ = ["WebSession", "RateCounter", "ResetToken", "VitaleCard", "RenderedMessage",
           "EmailChange"]


class WebSession(Base):
    """A server-side session. ``stage``: ``first`` (first connection under way), ``otp``
    (password checked, one-time code pending) or ``active`` (logged in)."""

    __tablename__ = "webmail_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))
    csrf: Mapped[str] = mapped_column(String(64))
    otp_hash: Mapped[str | None] = mapped_column(String(64))
    otp_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    otp_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RateCounter(Base):
    """Failures counted per key (a digest of ``purpose:account`` or ``purpose:client``) in a
    sliding window; ``locked_until`` set once the limit is reached."""

    __tablename__ = "webmail_rate"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResetToken(Base):
    """A single-use password-reset link sent to the contact email."""

    __tablename__ = "webmail_reset_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VitaleCard(Base):
    """The Vitale card serial number the patient typed at first connection, sealed."""

    __tablename__ = "webmail_vitale"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    serial_enc: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RenderedMessage(Base):
    """What the patient sees of a stored message (``webmail.render.Rendered``, as JSON), sealed
    with the patient's data key: a conversation page unseals these instead of reading,
    decrypting, parsing and sanitising every message again. Stored messages never change, so
    a row stays right until the renderer changes (``version``) or the message goes (cascade)."""

    __tablename__ = "webmail_rendered"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    images: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    """Rendered with the remote images shown (the patient asked) or blocked."""
    account_id: Mapped[int] = mapped_column(ID)
    version: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)



class EmailChange(Base):
    """A change of contact email the patient asked for, pending until they type the code
    mailed to the new address: the address sealed with their data key, the code as a keyed
    digest, a deadline and the wrong attempts counted. One per account."""

    __tablename__ = "webmail_email_changes"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    email_enc: Mapped[bytes] = mapped_column(LargeBinary)
    code_hash: Mapped[str] = mapped_column(String(64))
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
