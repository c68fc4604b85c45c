"""Password hashing with Argon2id (argon2-cffi), run off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Passwords"]


class Passwords:
    """Argon2id hashing. ``fast=True`` (tests only) lowers the cost parameters."""

    def __init__(self, *, fast: bool = False) -> None:
        if fast:
            self._ph = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        else:
            self._ph = PasswordHasher()  # RFC 9106 "second recommended" profile defaults

    def hash_sync(self, password: str) -> str:
        return self._ph.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._ph.hash, password)

    def verify_sync(self, stored: str, password: str) -> bool:
        try:
            return self._ph.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify_sync, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._ph.check_needs_rehash(stored)
        except InvalidHashError:
            return True
