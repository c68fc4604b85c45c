"""Server-side sessions, CSRF tokens and rate limits of the webmail.

Theory of operation
-------------------
* A session is a random 256-bit token given to the browser in an HttpOnly, SameSite=Strict
  cookie (and ``Secure`` unless the plain-HTTP demo turns it off), or to an API client as a
  bearer token. The database keeps only SHA-256(token), so a copy of the table cannot be used
  to log in.
* Stages: ``first`` (the letter's code was checked, credentials not chosen yet), ``otp``
  (password checked, the one-time code mailed) and ``active``. Reaching ``active`` always
  creates a NEW token and deletes the old row (rotation at login: a token seen before
  authentication is never an authenticated one).
* A session expires after ``session_idle_seconds`` without a request, and after
  :data:`MAX_LIFETIME` in any case; ``first``/``otp`` sessions after :data:`PENDING_LIFETIME`.
* CSRF: every session has its own random token, required in every state-changing form (and
  in the ``X-CSRF-Token`` header for API calls authenticated by cookie). Before login, forms
  use a double-submit token: a random cookie whose value must come back in the form.
* Rate limits count failures per ``purpose:account`` and ``purpose:client address`` in the
  database (they survive restarts and are shared by several processes); at the limit the key
  is locked for a while.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.db import Database
from webmail.models import RateCounter, WebSession

__all__ = ["SessionInfo", "Sessions", "RateLimiter", "Limit", "digest", "LIMITS",
           "MAX_LIFETIME", "PENDING_LIFETIME", "OTP_VALIDITY", "OTP_MAX_ATTEMPTS"]

MAX_LIFETIME = timedelta(hours=12)
PENDING_LIFETIME = timedelta(minutes=15)
OTP_VALIDITY = timedelta(minutes=10)
OTP_MAX_ATTEMPTS = 5


def digest(value: str) -> str:
    """SHA-256 hex of a token (what the database stores)."""
    return hashlib.sha256(value.encode()).hexdigest()


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SessionInfo:
    token: str
    account_id: int
    stage: str
    csrf: str


class Sessions:
    """Create, load, rotate and end sessions."""

    def __init__(self, db: Database, idle_seconds: int) -> None:
        self.db = db
        self.idle = timedelta(seconds=idle_seconds)

    async def create(self, account_id: int, stage: str) -> SessionInfo:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> None:
            s.add(WebSession(token_hash=digest(token), account_id=account_id, stage=stage,
                             csrf=csrf, otp_attempts=0, created_at=now, last_seen=now))

        await self.db.write(op)
        return SessionInfo(token, account_id, stage, csrf)

    async def load(self, token: str) -> SessionInfo | None:
        """The live session of ``token`` (touching it), or None if unknown or expired."""
        if not token or len(token) > 100:
            return None
        h = digest(token)
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> SessionInfo | None:
            row = await s.get(WebSession, h)
            if row is None:
                return None
            created, seen = _utc(row.created_at), _utc(row.last_seen)
            lifetime = MAX_LIFETIME if row.stage == "active" else PENDING_LIFETIME
            if now - seen > self.idle or now - created > lifetime:
                await s.delete(row)
                return None
            if now - seen > timedelta(seconds=15):  # avoid a write per request
                row.last_seen = now
            return SessionInfo(token, row.account_id, row.stage, row.csrf)

        return await self.db.write(op)

    async def destroy(self, token: str) -> None:
        h = digest(token)

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(WebSession).where(WebSession.token_hash == h))

        await self.db.write(op)

    async def destroy_all(self, account_id: int) -> None:
        """End every session of an account (after a password reset)."""
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(WebSession).where(WebSession.account_id == account_id))

        await self.db.write(op)

    async def rotate(self, old: SessionInfo, stage: str) -> SessionInfo:
        """Replace ``old`` by a new token at ``stage`` (login)."""
        await self.destroy(old.token)
        return await self.create(old.account_id, stage)

    # -- one-time codes -----------------------------------------------------------------

    @staticmethod
    def _otp_digest(token: str, code: str) -> str:
        return hmac.new(token.encode(), code.encode(), hashlib.sha256).hexdigest()

    async def set_otp(self, sess: SessionInfo) -> str:
        """Draw a fresh 6-digit code for this session; returns it (to be mailed)."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        h = digest(sess.token)
        value = self._otp_digest(sess.token, code)

        async def op(s: AsyncSession) -> None:
            row = await s.get(WebSession, h)
            if row is not None:
                row.otp_hash = value
                row.otp_expires = datetime.now(UTC) + OTP_VALIDITY
                row.otp_attempts = 0

        await self.db.write(op)
        return code

    async def check_otp(self, sess: SessionInfo, code: str) -> bool | None:
        """True if right; False if wrong; None if the code is spent (expired or too many
        attempts: the session is then ended)."""
        h = digest(sess.token)
        candidate = self._otp_digest(sess.token, code.strip())
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> bool | None:
            row = await s.get(WebSession, h)
            if row is None or row.otp_hash is None or row.otp_expires is None:
                return None
            if _utc(row.otp_expires) < now or row.otp_attempts >= OTP_MAX_ATTEMPTS:
                await s.delete(row)
                return None
            if hmac.compare_digest(row.otp_hash, candidate):
                row.otp_hash = None
                return True
            row.otp_attempts += 1
            if row.otp_attempts >= OTP_MAX_ATTEMPTS:
                await s.delete(row)
                return None
            return False

        return await self.db.write(op)

    async def purge_expired(self) -> None:
        horizon = datetime.now(UTC) - self.idle

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(WebSession).where(WebSession.last_seen < horizon))

        await self.db.write(op)


@dataclass(frozen=True)
class Limit:
    """``max_failures`` within ``window`` lock the key for ``lock``."""

    max_failures: int
    window: timedelta
    lock: timedelta


LIMITS: dict[str, Limit] = {
    # First connection: the provisional code is short-lived but guessable in bulk.
    "first-account": Limit(5, timedelta(hours=1), timedelta(hours=1)),
    "first-client": Limit(20, timedelta(hours=1), timedelta(hours=1)),
    # Password login (the directory adds its own back-off and account lockout).
    "login-client": Limit(20, timedelta(minutes=15), timedelta(minutes=15)),
    "login-account": Limit(10, timedelta(minutes=15), timedelta(minutes=15)),
    # One-time codes: each session allows OTP_MAX_ATTEMPTS; this caps the account overall.
    "otp-account": Limit(10, timedelta(minutes=30), timedelta(minutes=30)),
    # Password reset mails (counted on every request, not only failures).
    "reset-account": Limit(3, timedelta(hours=1), timedelta(hours=1)),
    "reset-client": Limit(10, timedelta(hours=1), timedelta(hours=1)),
}


class RateLimiter:
    """Failure counters with temporary lockout, stored in the database."""

    def __init__(self, db: Database, limits: dict[str, Limit] | None = None) -> None:
        self.db = db
        self.limits = limits or LIMITS

    @staticmethod
    def _key(purpose: str, subject: str) -> str:
        return digest(f"{purpose}:{subject}")

    async def blocked(self, purpose: str, subject: str) -> bool:
        """True while ``subject`` is locked out for ``purpose``."""
        async with self.db.session() as s:
            row = await s.get(RateCounter, self._key(purpose, subject))
        if row is None or row.locked_until is None:
            return False
        return _utc(row.locked_until) > datetime.now(UTC)

    async def fail(self, purpose: str, subject: str) -> bool:
        """Count one failure; returns True if the key is now locked."""
        limit = self.limits[purpose]
        key = self._key(purpose, subject)
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> bool:
            row = await s.get(RateCounter, key)
            if row is None:
                row = RateCounter(key_hash=key, window_start=now, count=0)
                s.add(row)
            if now - _utc(row.window_start) > limit.window:
                row.window_start, row.count, row.locked_until = now, 0, None
            row.count += 1
            if row.count >= limit.max_failures:
                row.locked_until = now + limit.lock
                return True
            return False

        return await self.db.write(op)

    async def clear(self, purpose: str, subject: str) -> None:
        key = self._key(purpose, subject)

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(RateCounter).where(RateCounter.key_hash == key))

        await self.db.write(op)

    async def count(self, purpose: str, subject: str) -> int:
        async with self.db.session() as s:
            row = (await s.execute(select(RateCounter.count).where(
                RateCounter.key_hash == self._key(purpose, subject)))).scalar()
        return int(row or 0)
