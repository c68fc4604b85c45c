"""Bearer tokens for professionals' software on ``/fhir/`` (the repository of ``ApiToken``).

A token is ``mss_`` + 43 URL-safe characters (256 random bits), shown once when issued. Only its
SHA-256 is stored: with that much entropy a fast hash cannot be reversed, and lookups stay one
indexed equality. Tokens belong to a professional's account; a closed account's tokens stop
working because the caller re-reads the account on each use.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dossier_bridge.models import ApiToken
from mailserver.store.db import Database

__all__ = ["TokenRepository", "TokenInfo", "TOKEN_PREFIX"]

TOKEN_PREFIX = "mss_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token's record (never the token itself)."""

    id: int
    account_id: int
    label: str
    created_at: datetime
    revoked: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class TokenRepository:
    """Issue, resolve, list and revoke bearer tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def issue(self, account_id: int, label: str = "") -> str:
        """A new token for ``account_id``; the clear token is returned once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)

        async def op(s: AsyncSession) -> None:
            s.add(ApiToken(account_id=account_id, token_hash=_digest(token), label=label[:200],
                           created_at=datetime.now(UTC), revoked_at=None))

        await self.db.write(op)
        return token

    async def resolve(self, token: str) -> int | None:
        """The account id of a valid (not revoked) token, else None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        async with self.db.session() as s:
            row = (await s.execute(select(ApiToken.account_id).where(
                ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)))).first()
        return int(row[0]) if row else None

    async def list(self, account_id: int) -> list[TokenInfo]:
        """The tokens of an account, oldest first."""
        async with self.db.session() as s:
            rows = (await s.execute(select(ApiToken).where(ApiToken.account_id == account_id)
                                    .order_by(ApiToken.id))).scalars().all()
        return [TokenInfo(r.id, r.account_id, r.label, r.created_at, r.revoked_at is not None)
                for r in rows]

    async def revoke(self, token_id: int) -> bool:
        """Revoke a token by id; False when there is no such live token."""

        async def op(s: AsyncSession) -> bool:
            res = await s.execute(update(ApiToken).where(
                ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC)))
            return bool(res.rowcount)  # type: ignore[attr-defined]

        return await self.db.write(op)
