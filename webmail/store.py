"""The webmail's own store: every query on its tables (:mod:`webmail.models`).

Sessions, rate counters, password-reset tokens, Vitale cards, the sealed message renderings
and the pending changes of contact email are read and written here and nowhere else (the
webmail's repository, as the dossier bridge has its document store). Callers pass digests,
never tokens: what reaches the database is already what it keeps (the email-change codes are
digested here, keyed with the account's data key).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.crypto import DecryptError, seal, unseal
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager
from mailserver.store.models import Message
from mailserver.store.records import utc
from webmail.models import (
    EmailChange,
    RateCounter,
    RenderedMessage,
    ResetToken,
    VitaleCard,
    WebSession,
)

__all__ = ["SessionRow", "WebmailStore"]


@dataclass(frozen=True)
class SessionRow:
    """A stored session (``token_hash`` is SHA-256 of the token)."""

    token_hash: str
    account_id: int
    stage: str
    csrf: str
    created_at: datetime
    last_seen: datetime


class WebmailStore:
    """Repository of the webmail's tables."""

    def __init__(self, db: Database, keys: KeyManager) -> None:
        self.db = db
        self.keys = keys

    # -- sessions -----------------------------------------------------------------------

    async def add_session(self, row: SessionRow) -> None:
        async def op(s: AsyncSession) -> None:
            s.add(WebSession(token_hash=row.token_hash, account_id=row.account_id,
                             stage=row.stage, csrf=row.csrf, otp_attempts=0,
                             created_at=row.created_at, last_seen=row.last_seen))

        await self.db.write(op)

    async def session(self, token_hash: str) -> SessionRow | None:
        async with self.db.session() as s:
            row = await s.get(WebSession, token_hash)
        if row is None:
            return None
        return SessionRow(row.token_hash, row.account_id, row.stage, row.csrf,
                          utc(row.created_at), utc(row.last_seen))

    async def active_sessions(self, since: datetime) -> int:
        """Sessions seen at or after ``since`` (a metric, read at scrape time)."""
        query = select(func.count()).select_from(WebSession).where(WebSession.last_seen >= since)
        async with self.db.session() as s:
            return int((await s.execute(query)).scalar_one())

    async def touch_session(self, token_hash: str, now: datetime) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(update(WebSession).where(WebSession.token_hash == token_hash)
                            .values(last_seen=now))

        await self.db.write(op)

    async def delete_session(self, token_hash: str) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(WebSession).where(WebSession.token_hash == token_hash))

        await self.db.write(op)

    async def delete_sessions_of(self, account_id: int) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(WebSession).where(WebSession.account_id == account_id))

        await self.db.write(op)

    @staticmethod
    async def end_sessions_in(s: AsyncSession, account_id: int) -> list[str]:
        """End every session of the account (it closes), in the caller's transaction."""
        await s.execute(delete(WebSession).where(WebSession.account_id == account_id))
        return []

    @staticmethod
    async def erase_account_in(s: AsyncSession, account_id: int) -> list[str]:
        """Delete what the webmail keeps of an account (its archive deleted or purged):
        sessions, reset tokens, the Vitale serial, the kept renderings, a pending email
        change. No blobs."""
        for model in (WebSession, ResetToken, VitaleCard, RenderedMessage, EmailChange):
            await s.execute(delete(model).where(model.account_id == account_id))
        return []

    async def delete_sessions_idle_since(self, horizon: datetime) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(WebSession).where(WebSession.last_seen < horizon))

        await self.db.write(op)

    async def set_otp(self, token_hash: str, otp_hash: str, expires: datetime) -> None:
        """Store a fresh one-time code digest (attempts back to 0)."""
        async def op(s: AsyncSession) -> None:
            row = await s.get(WebSession, token_hash)
            if row is not None:
                row.otp_hash, row.otp_expires, row.otp_attempts = otp_hash, expires, 0

        await self.db.write(op)

    async def check_otp(self, token_hash: str, candidate: str, now: datetime,
                        max_attempts: int) -> bool | None:
        """Compare and count in one transaction: True if right (the code is spent), False if
        wrong; None if the code is spent (expired or too many attempts: the session row is
        deleted)."""
        async def op(s: AsyncSession) -> bool | None:
            row = await s.get(WebSession, token_hash)
            if row is None or row.otp_hash is None or row.otp_expires is None:
                return None
            if utc(row.otp_expires) < now or row.otp_attempts >= max_attempts:
                await s.delete(row)
                return None
            if hmac.compare_digest(row.otp_hash, candidate):
                row.otp_hash = None
                return True
            row.otp_attempts += 1
            if row.otp_attempts >= max_attempts:
                await s.delete(row)
                return None
            return False

        return await self.db.write(op)

    # -- rate counters ------------------------------------------------------------------

    async def locked_until(self, key_hash: str) -> datetime | None:
        async with self.db.session() as s:
            row = await s.get(RateCounter, key_hash)
        return utc(row.locked_until) if row is not None and row.locked_until else None

    async def count_failure(self, key_hash: str, now: datetime, *, window: timedelta,
                            max_failures: int, lock: timedelta) -> bool:
        """Count one failure in the sliding window; True if the key is now locked."""
        async def op(s: AsyncSession) -> bool:
            row = await s.get(RateCounter, key_hash)
            if row is None:
                row = RateCounter(key_hash=key_hash, window_start=now, count=0)
                s.add(row)
            if now - utc(row.window_start) > window:
                row.window_start, row.count, row.locked_until = now, 0, None
            row.count += 1
            if row.count >= max_failures:
                row.locked_until = now + lock
                return True
            return False

        return await self.db.write(op)

    async def clear_failures(self, key_hash: str) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(RateCounter).where(RateCounter.key_hash == key_hash))

        await self.db.write(op)

    async def failures(self, key_hash: str) -> int:
        async with self.db.session() as s:
            value = (await s.execute(select(RateCounter.count).where(
                RateCounter.key_hash == key_hash))).scalar()
        return int(value or 0)

    # -- password reset tokens ----------------------------------------------------------

    async def replace_reset_token(self, account_id: int, token_hash: str,
                                  expires: datetime) -> None:
        """The account's only live reset token from now on."""
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(ResetToken).where(ResetToken.account_id == account_id))
            s.add(ResetToken(token_hash=token_hash, account_id=account_id, expires=expires))

        await self.db.write(op)

    async def reset_token(self, token_hash: str) -> tuple[int, datetime] | None:
        """(account id, expiry) of a stored reset token."""
        async with self.db.session() as s:
            row = await s.get(ResetToken, token_hash)
        return (row.account_id, utc(row.expires)) if row is not None else None

    async def consume_reset_token(self, token_hash: str) -> bool:
        """Delete the token; False if it was already gone (used by a concurrent request)."""
        async def op(s: AsyncSession) -> bool:
            result = await s.execute(delete(ResetToken).where(
                ResetToken.token_hash == token_hash))
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self.db.write(op)

    # -- changes of contact email -------------------------------------------------------

    @staticmethod
    def _email_aad(account_id: int) -> bytes:
        return f"webmail-email-change:{account_id}".encode()

    @staticmethod
    def _code_digest(key: bytes, code: str) -> str:
        """A short code keyed with the account's data key: the table alone cannot be used to
        try the million codes."""
        return hmac.new(key, f"email-change:{code}".encode(), "sha256").hexdigest()

    async def put_email_change(self, account_id: int, email: str, code: str,
                               expires: datetime) -> None:
        """The account's only pending change from now on (the address sealed, the code
        digested)."""
        key = await self.keys.get(account_id)
        sealed = seal(key, email.encode(), self._email_aad(account_id))
        code_hash = self._code_digest(key, code)

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(EmailChange).where(EmailChange.account_id == account_id))
            s.add(EmailChange(account_id=account_id, email_enc=sealed, code_hash=code_hash,
                              expires=expires, attempts=0))

        await self.db.write(op)

    async def pending_email(self, account_id: int, now: datetime) -> str | None:
        """The new address waiting for its code (None if none, or expired)."""
        async with self.db.session() as s:
            row = await s.get(EmailChange, account_id)
        if row is None or utc(row.expires) < now:
            return None
        key = await self.keys.get(account_id)
        return unseal(key, row.email_enc, self._email_aad(account_id)).decode()

    async def take_email_change(self, account_id: int, code: str, now: datetime,
                                max_attempts: int) -> str | bool | None:
        """Compare and count in one transaction: the new address if the code is right (the
        change is spent), False if wrong, None if there is none any more (expired, or too
        many attempts: then it is deleted)."""
        key = await self.keys.get(account_id)
        code_hash = self._code_digest(key, code)

        async def op(s: AsyncSession) -> bytes | bool | None:
            row = await s.get(EmailChange, account_id)
            if row is None:
                return None
            if utc(row.expires) < now or row.attempts >= max_attempts:
                await s.delete(row)
                return None
            if hmac.compare_digest(row.code_hash, code_hash):
                sealed = row.email_enc
                await s.delete(row)
                return sealed
            row.attempts += 1
            if row.attempts >= max_attempts:
                await s.delete(row)
                return None
            return False

        result = await self.db.write(op)
        if not isinstance(result, bytes):
            return result
        return unseal(key, result, self._email_aad(account_id)).decode()

    async def drop_email_change(self, account_id: int) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(EmailChange).where(EmailChange.account_id == account_id))

        await self.db.write(op)

    # -- Vitale cards -------------------------------------------------------------------

    async def record_vitale(self, account_id: int, serial: str, now: datetime) -> None:
        """Record the declared card serial, sealed with the patient's data key."""
        key = await self.keys.get(account_id)
        sealed = seal(key, serial.encode(), f"vitale:{account_id}".encode())

        async def op(s: AsyncSession) -> None:
            row = await s.get(VitaleCard, account_id)
            if row is None:
                s.add(VitaleCard(account_id=account_id, serial_enc=sealed, recorded_at=now))
            else:
                row.serial_enc, row.recorded_at = sealed, now

        await self.db.write(op)

    # -- message renderings -------------------------------------------------------------

    @staticmethod
    def _rendered_aad(account_id: int, message_id: int, images: bool, version: str) -> bytes:
        return f"webmail-render:{account_id}:{message_id}:{int(images)}:{version}".encode()

    async def renderings(self, account_id: int, message_ids: Sequence[int], images: bool,
                         version: str) -> dict[int, bytes]:
        """message id → its stored rendering (unsealed), for those of ``message_ids`` that
        have one made by renderer ``version``: one query for a page."""
        if not message_ids:
            return {}
        async with self.db.session() as s:
            rows = (await s.execute(select(RenderedMessage.message_id, RenderedMessage.sealed)
                                    .where(RenderedMessage.message_id.in_(message_ids),
                                           RenderedMessage.images == images,
                                           RenderedMessage.account_id == account_id,
                                           RenderedMessage.version == version))).all()
        if not rows:
            return {}
        key = await self.keys.get(account_id)
        out = {}
        for message_id, sealed in rows:
            try:
                out[message_id] = unseal(key, sealed, self._rendered_aad(
                    account_id, message_id, images, version))
            except DecryptError:
                continue  # rendered again, and replaced
        return out

    async def put_renderings(self, account_id: int, renderings: Mapping[int, bytes],
                             images: bool, version: str) -> None:
        """Keep the renderings of messages of ``account_id`` (replacing older ones), sealed
        with its data key; messages deleted meanwhile are skipped."""
        if not renderings:
            return
        key = await self.keys.get(account_id)
        sealed = {mid: seal(key, data, self._rendered_aad(account_id, mid, images, version))
                  for mid, data in renderings.items()}

        async def op(s: AsyncSession) -> None:
            ids = list(sealed)
            alive = set((await s.execute(select(Message.id).where(
                Message.id.in_(ids), Message.account_id == account_id))).scalars())
            await s.execute(delete(RenderedMessage).where(
                RenderedMessage.message_id.in_(ids), RenderedMessage.images == images))
            s.add_all(RenderedMessage(message_id=mid, images=images, account_id=account_id,
                                      version=version, sealed=blob)
                      for mid, blob in sealed.items() if mid in alive)

        await self.db.write(op)
