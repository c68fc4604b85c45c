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

from webmail.store import SessionRow, WebmailStore

__all__ = ["SessionInfo", "Sessions", "RateLimiter", "Limit", "digest", "LIMITS",
           "MAX_LIFETIME", "PENDING_LIFETIME", "OTP_VALIDITY", "OTP_MAX_ATTEMPTS"]

MAX_LIFETIME = timedelta(hours=12)
PENDING_LIFETIME = timedelta(minutes=15)
OTP_VALIDITY = timedelta(minutes=10)
OTP_MAX_ATTEMPTS = 5


def digest(value: str) -> str:
    """SHA-256 hex of a token (what the database stores)."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    token: str
    account_id: int
    stage: str
    csrf: str


class Sessions:
    """Create, load, rotate and end sessions."""

    def __init__(self, store: WebmailStore, idle_seconds: int) -> None:
        self.store = store
        self.idle = timedelta(seconds=idle_seconds)

    async def create(self, account_id: int, stage: str) -> SessionInfo:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        await self.store.add_session(SessionRow(digest(token), account_id, stage, csrf,
                                                now, now))
        return SessionInfo(token, account_id, stage, csrf)

    async def load(self, token: str) -> SessionInfo | None:
        """The live session of ``token`` (touching it), or None if unknown or expired."""
        if not token or len(token) > 100:
            return None
        h = digest(token)
        now = datetime.now(UTC)
        row = await self.store.session(h)
        if row is None:
            return None
        lifetime = MAX_LIFETIME if row.stage == "active" else PENDING_LIFETIME
        if now - row.last_seen > self.idle or now - row.created_at > lifetime:
            await self.store.delete_session(h)
            return None
        if now - row.last_seen > timedelta(seconds=15):  # avoid a write per request
            await self.store.touch_session(h, now)
        return SessionInfo(token, row.account_id, row.stage, row.csrf)

    async def destroy(self, token: str) -> None:
        await self.store.delete_session(digest(token))

    async def destroy_all(self, account_id: int) -> None:
        """End every session of an account (after a password reset)."""
        await self.store.delete_sessions_of(account_id)

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
        await self.store.set_otp(digest(sess.token), self._otp_digest(sess.token, code),
                                 datetime.now(UTC) + OTP_VALIDITY)
        return code

    async def check_otp(self, sess: SessionInfo, code: str) -> bool | None:
        """True if right; False if wrong; None if the code is spent (expired or too many
        attempts: the session is then ended)."""
        return await self.store.check_otp(digest(sess.token),
                                          self._otp_digest(sess.token, code.strip()),
                                          datetime.now(UTC), OTP_MAX_ATTEMPTS)

    async def purge_expired(self) -> None:
        await self.store.delete_sessions_idle_since(datetime.now(UTC) - self.idle)


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

    def __init__(self, store: WebmailStore, limits: dict[str, Limit] | None = None) -> None:
        self.store = store
        self.limits = limits or LIMITS

    @staticmethod
    def _key(purpose: str, subject: str) -> str:
        return digest(f"{purpose}:{subject}")

    async def blocked(self, purpose: str, subject: str) -> bool:
        """True while ``subject`` is locked out for ``purpose``."""
        until = await self.store.locked_until(self._key(purpose, subject))
        return until is not None and until > datetime.now(UTC)

    async def fail(self, purpose: str, subject: str) -> bool:
        """Count one failure; returns True if the key is now locked."""
        limit = self.limits[purpose]
        return await self.store.count_failure(
            self._key(purpose, subject), datetime.now(UTC), window=limit.window,
            max_failures=limit.max_failures, lock=limit.lock)

    async def clear(self, purpose: str, subject: str) -> None:
        await self.store.clear_failures(self._key(purpose, subject))

    async def count(self, purpose: str, subject: str) -> int:
        return await self.store.failures(self._key(purpose, subject))
