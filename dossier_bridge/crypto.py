"""Keys derived from a patient's data key, and keyed hashes.

One data key per account seals everything (mailserver.store.crypto); the document store derives
purpose-bound sub-keys from it with HKDF-SHA-256 (RFC 5869) so a keyed hash can never be confused
with a ciphertext key, and crypto-shredding the data key also kills every derived key.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["PURPOSE_DEDUP", "PURPOSE_LOG", "derive", "keyed_hash"]

PURPOSE_DEDUP = b"mssante dossier idempotency v1"
PURPOSE_LOG = b"mssante dossier access log v1"


def derive(data_key: bytes, purpose: bytes) -> bytes:
    """A 256-bit sub-key of ``data_key`` for ``purpose`` (HKDF-SHA-256, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(data_key)


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """Hex HMAC-SHA-256 of ``kind:value``."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
