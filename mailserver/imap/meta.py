"""The cached summary of a message that IMAP FETCH/SEARCH reads: its structure and its raw
header block, serialised for the store's sealed cache (``ImapStore.metas``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mailserver.imap.message import MessageSummary

__all__ = ["Meta", "META_CODEC"]


@dataclass(frozen=True, slots=True)
class Meta:
    """Cached, decrypted summary of one message: structure and its raw header block."""

    summary: MessageSummary
    header: bytes

    def to_json(self) -> bytes:
        """Serialise for sealing: one JSON document, the summary nested as an object."""
        return json.dumps({"s": self.summary.to_obj(), "h": self.header.decode("latin-1")},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Meta:
        """Inverse of :meth:`to_json` (one ``json.loads``); also reads the older form whose
        summary was a nested JSON string."""
        d = json.loads(data)
        s = d["s"]
        summary = (MessageSummary.from_json(s.encode()) if isinstance(s, str)
                   else MessageSummary.from_obj(s))
        return cls(summary, d["h"].encode("latin-1"))

    @classmethod
    def of(cls, raw: bytes) -> Meta:
        """Parse a message once."""
        summary = MessageSummary.from_bytes(raw)
        return cls(summary, raw[summary.root.start:summary.root.body_start])


class _MetaCodec:
    """:class:`~mailserver.store.imapmeta.SummaryCodec` of :class:`Meta`."""

    def of(self, raw: bytes) -> Meta:
        return Meta.of(raw)

    def loads(self, data: bytes) -> Meta:
        return Meta.from_json(data)

    def dumps(self, value: Meta) -> bytes:
        return value.to_json()


META_CODEC = _MetaCodec()
