"""The cached summary of a message that IMAP FETCH/SEARCH/SORT/THREAD read: its structure,
its raw header block and its SORT/THREAD keys, serialised for the store's sealed cache
(``ImapStore.metas``).

Summaries written before the keys existed (no ``"k"``) get them from their cached header
block when read, so older rows need no migration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.parser import BytesHeaderParser

from mailserver.imap.message import MessageSummary

from .rawheaders import RAW_POLICY
from .sortfields import SortFields, sort_fields

__all__ = ["Meta", "META_CODEC", "Keys", "KEYS_CODEC"]


def _fields_of(header: bytes) -> SortFields:
    return sort_fields(BytesHeaderParser(policy=RAW_POLICY).parsebytes(header))


@dataclass(frozen=True, slots=True)
class Meta:
    """Cached, decrypted summary of one message: structure, raw header block, sort keys
    (None when read from a summary written before they existed: see :attr:`fields`)."""

    summary: MessageSummary
    header: bytes
    keys: SortFields | None = None

    @property
    def fields(self) -> SortFields:
        """The SORT/THREAD keys (from the header block for older summaries)."""
        return self.keys if self.keys is not None else _fields_of(self.header)

    def to_json(self) -> bytes:
        """Serialise for sealing: one JSON document, the keys first (read alone by
        :data:`KEYS_CODEC`), then the summary nested as an object and the header."""
        return json.dumps({"k": self.fields.to_list(), "s": self.summary.to_obj(),
                           "h": self.header.decode("latin-1")}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Meta:
        """Inverse of :meth:`to_json` (one ``json.loads``); also reads the older forms whose
        summary was a nested JSON string, or that had no sort keys."""
        d = json.loads(data)
        s = d["s"]
        summary = (MessageSummary.from_json(s.encode()) if isinstance(s, str)
                   else MessageSummary.from_obj(s))
        k = d.get("k")
        return cls(summary, d["h"].encode("latin-1"),
                   SortFields.from_list(k) if isinstance(k, list) else None)

    @classmethod
    def of(cls, raw: bytes) -> Meta:
        """Parse a message once."""
        summary = MessageSummary.from_bytes(raw)
        header = raw[summary.root.start:summary.root.body_start]
        return cls(summary, header, _fields_of(header))


class _MetaCodec:
    """:class:`~mailserver.store.imapmeta.SummaryCodec` of :class:`Meta`."""

    def of(self, raw: bytes) -> Meta:
        return Meta.of(raw)

    def loads(self, data: bytes) -> Meta:
        return Meta.from_json(data)

    def dumps(self, value: Meta) -> bytes:
        return value.to_json()


META_CODEC = _MetaCodec()


@dataclass(frozen=True, slots=True)
class Keys:
    """What SORT and THREAD read of a summary; ``meta`` is the whole summary when it was just
    computed (so the store can cache it), else None."""

    fields: SortFields
    meta: Meta | None = None


_KEYS_FIRST = b'{"k":'
_DECODER = json.JSONDecoder()


class _KeysCodec:
    """Reads only the sort keys of a cached summary (no MIME tree rebuilt)."""

    def of(self, raw: bytes) -> Keys:
        meta = Meta.of(raw)
        return Keys(meta.fields, meta)

    def loads(self, data: bytes) -> Keys:
        if data.startswith(_KEYS_FIRST):  # read the keys only, not the whole summary
            k, _ = _DECODER.raw_decode(data.decode("utf-8"), len(_KEYS_FIRST))
            return Keys(SortFields.from_list(k))
        d = json.loads(data)
        k = d.get("k")
        if isinstance(k, list):
            return Keys(SortFields.from_list(k))
        return Keys(_fields_of(d["h"].encode("latin-1")))

    def dumps(self, value: Keys) -> bytes:
        if value.meta is None:
            raise ValueError("only a computed summary is cached")
        return value.meta.to_json()


KEYS_CODEC = _KeysCodec()
