"""Envelope encryption at rest.

Theory of operation:

* The **master key** (key-encryption key, 256 bits) lives in a file (mode 0600) outside the
  database. The file may hold several keys, one per line ``<key-id>:<base64>``; the first line is
  the current key. Old keys are kept only while a rotation is in progress.
* Every mailbox (account) has its own random 256-bit **data key**, stored in the database
  wrapped (AES-256-GCM) by the master key, with the account id as associated data so a wrapped
  key cannot be moved to another account.
* Everything sensitive (message bytes, subjects, display names, attachments, documents) is sealed
  with the owning mailbox's data key: AES-256-GCM, a random 96-bit nonce per seal, and a caller
  chosen associated-data string binding the ciphertext to its row/purpose.
* Rotating the master key re-wraps data keys only; the data is untouched.
* Destroying a data key (crypto-shredding) makes every ciphertext of that mailbox unreadable.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mailserver.errors import StoreError
from mailserver.files import atomic_write

__all__ = ["MasterKeyring", "seal", "unseal", "new_data_key", "KeyCache", "DecryptError"]

NONCE = 12
KEY_BYTES = 32


class DecryptError(StoreError):
    """A ciphertext failed authentication (tampered, wrong key or wrong associated data)."""


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext``; returns nonce || ciphertext+tag."""
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt what :func:`seal` produced. Raises :class:`DecryptError` when tampered."""
    if len(blob) < NONCE + 16:
        raise DecryptError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad)
    except InvalidTag as exc:
        raise DecryptError("ciphertext failed authentication") from exc


def _write_private(path: Path, text: str) -> None:
    """Atomically write a file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, text.encode())


@dataclass
class MasterKeyring:
    """The master keys read from the key file; ``current_id`` wraps new data keys."""

    path: Path
    keys: dict[str, bytes]
    current_id: str

    @classmethod
    def create(cls, path: Path) -> MasterKeyring:
        """Generate a new key file. Refuses to overwrite an existing one."""
        if path.exists():
            raise StoreError(f"{path} already exists")
        key_id = secrets.token_hex(4)
        ring = cls(path, {key_id: new_data_key()}, key_id)
        ring.save()
        return ring

    @classmethod
    def load(cls, path: Path) -> MasterKeyring:
        try:
            text = path.read_text()
        except OSError as exc:
            raise StoreError(f"cannot read master key file {path}: {exc.strerror}") from exc
        keys: dict[str, bytes] = {}
        current = ""
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key_id, _, b64 = line.partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError as exc:
                raise StoreError(f"{path}: malformed key line") from exc
            if len(key) != KEY_BYTES:
                raise StoreError(f"{path}: key {key_id} is not 256 bits")
            keys[key_id] = key
            current = current or key_id
        if not keys:
            raise StoreError(f"{path}: no key")
        return cls(path, keys, current)

    def save(self) -> None:
        order = [self.current_id] + [k for k in self.keys if k != self.current_id]
        lines = ["# mssante master key file: keep secret, back up separately from the data"]
        lines += [f"{k}:{base64.b64encode(self.keys[k]).decode()}" for k in order]
        _write_private(self.path, "\n".join(lines) + "\n")

    def add_new_current(self) -> str:
        """Add a fresh key and make it current (first step of a rotation)."""
        key_id = secrets.token_hex(4)
        self.keys[key_id] = new_data_key()
        self.current_id = key_id
        self.save()
        return key_id

    def retire_others(self) -> None:
        """Forget every key but the current one (last step of a rotation)."""
        self.keys = {self.current_id: self.keys[self.current_id]}
        self.save()

    def wrap(self, data_key: bytes, account_id: int) -> tuple[str, bytes]:
        aad = f"datakey:{account_id}".encode()
        return self.current_id, seal(self.keys[self.current_id], data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, account_id: int) -> bytes:
        try:
            master = self.keys[key_id]
        except KeyError:
            raise StoreError(f"master key {key_id} is not in the key file") from None
        return unseal(master, wrapped, f"datakey:{account_id}".encode())


class KeyCache:
    """A bounded LRU of unwrapped data keys (account id → key)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[int, bytes] = OrderedDict()

    def get(self, account_id: int) -> bytes | None:
        key = self._keys.get(account_id)
        if key is not None:
            self._keys.move_to_end(account_id)
        return key

    def put(self, account_id: int, key: bytes) -> None:
        self._keys[account_id] = key
        self._keys.move_to_end(account_id)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def drop(self, account_id: int) -> None:
        self._keys.pop(account_id, None)

    def clear(self) -> None:
        self._keys.clear()
