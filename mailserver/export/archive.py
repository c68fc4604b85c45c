"""The patient's data export ("Télécharger mes données"): one ZIP, streamed.

Theory of operation
-------------------
:class:`AccountExport` receives narrow readers (messages, documents, access log, profile:
the protocols below, filled by the composition root) and yields the archive as chunks of
bytes. Items are read one at a time and written to a :class:`ZipStream` in slices, so memory
holds one message or one document (sealed whole at rest: they cannot be read in parts) plus
one slice of output, whatever the space's size. Deflate runs in a worker thread for slices
worth it; small members are written inline (a thread hop costs more than they do).

Layout (see :mod:`mailserver.export.layout`)::

    messages/<AAAA-MM-JJ>-<objet>/<n>-<AAAA-MM-JJ>.eml   exact stored bytes
    messages/autres/...                                  messages in no conversation
    documents/<fichier>, documents/index.csv, documents/index.json
    profil/profil.json (GET /api/profile), profil/bundle-fhir.json (FHIR R4 Bundle)
    journal-des-acces.csv, LISEZMOI.txt
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mailserver.directory.service import AccountInfo
from mailserver.errors import MssanteError
from mailserver.export import layout
from mailserver.export.zipstream import SLICE, ZipStream, compressible

__all__ = ["AccountExport", "MessageRef", "MessageReader", "DocumentMeta", "DocumentReader",
           "AccessEntry", "AccessLogReader", "ProfileReader", "FLUSH"]

log = logging.getLogger(__name__)

FLUSH = 256 * 1024
"""Archive bytes gathered before a chunk is handed to the caller."""
_THREAD_MIN = 64 * 1024
"""Slices to deflate from this size on go to a worker thread."""


class MessageRef(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def conversation_id(self) -> int | None: ...
    @property
    def internaldate(self) -> datetime: ...
    @property
    def size(self) -> int: ...


class MessageReader(Protocol):
    async def messages(self, account_id: int) -> Sequence[MessageRef]: ...
    async def subjects(self, account_id: int) -> Mapping[int, str]: ...
    async def raw(self, message_id: int) -> bytes: ...


class DocumentMeta(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def label_fr(self) -> str: ...
    @property
    def date(self) -> datetime: ...
    @property
    def author(self) -> str: ...
    @property
    def masked(self) -> bool: ...
    @property
    def content_type(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def size(self) -> int: ...


class DocumentReader(Protocol):
    async def all_documents(self, account: AccountInfo) -> Sequence[DocumentMeta]: ...
    async def content(self, account: AccountInfo, document_id: int
                      ) -> tuple[Any, bytes]: ...


class AccessEntry(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def who(self) -> str: ...
    @property
    def profession(self) -> str: ...
    @property
    def structure(self) -> str: ...
    @property
    def document_title(self) -> str: ...


class AccessLog(Protocol):
    @property
    def entries(self) -> Sequence[AccessEntry]: ...
    @property
    def intact(self) -> bool: ...


class AccessLogReader(Protocol):
    async def access_log(self, account: AccountInfo) -> AccessLog: ...


class ProfileReader(Protocol):
    async def profile(self, account: AccountInfo) -> Mapping[str, Any]:
        """The ``GET /api/profile`` JSON."""
        ...

    async def fhir_bundle(self, account: AccountInfo, files: Mapping[int, str]
                          ) -> Mapping[str, Any] | None:
        """The profile, the patient and the documents as a validated FHIR R4 Bundle (None
        when the server cannot produce one); ``files``: document id → its path in the
        archive (the DocumentReferences point at them)."""
        ...


@dataclass
class _Run:
    """What one export has written so far (small: names, hashes, counts)."""

    zip: ZipStream
    now: datetime
    names: layout.Names = field(default_factory=layout.Names)
    index: list[layout.IndexRow] = field(default_factory=list)
    files: dict[int, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"messages": 0, "documents": 0})
    log_intact: bool = True
    fhir: bool = False


class AccountExport:
    """Builds the export archive of one patient's space."""

    def __init__(self, messages: MessageReader, documents: DocumentReader | None,
                 access: AccessLogReader | None, profile: ProfileReader | None, *,
                 actions: Mapping[str, str] | None = None) -> None:
        self.messages = messages
        self.documents = documents
        self.access = access
        self.profile = profile
        self.actions = dict(actions or {})
        """Access-log action code → the French word the patient reads."""

    async def stream(self, account: AccountInfo, now: datetime) -> AsyncIterator[bytes]:
        """The archive, in chunks of about :data:`FLUSH` bytes."""
        run = _Run(ZipStream(), now)
        buf = bytearray()
        async for piece in self._pieces(run, account):
            buf += piece
            if len(buf) >= FLUSH:
                yield bytes(buf)
                buf.clear()
        buf += run.zip.close()
        yield bytes(buf)

    async def estimated_size(self, account: AccountInfo) -> int:
        """The space's messages and documents, in bytes (before compression)."""
        total = sum(m.size for m in await self.messages.messages(account.id))
        if self.documents is not None:
            total += sum(d.size for d in await self.documents.all_documents(account))
        return total

    async def write_to(self, account: AccountInfo, now: datetime, sink: Any) -> int:
        """Write the archive to a binary file object; returns its size."""
        total = 0
        async for chunk in self.stream(account, now):
            await asyncio.to_thread(sink.write, chunk)
            total += len(chunk)
        return total

    async def _pieces(self, run: _Run, account: AccountInfo) -> AsyncIterator[bytes]:
        async for piece in self._messages(run, account):
            yield piece
        if self.documents is not None:
            async for piece in self._documents(run, account):
                yield piece
        if self.profile is not None:
            async for piece in self._profile(run, account):
                yield piece
        if self.access is not None:
            view = await self.access.access_log(account)
            run.log_intact = view.intact
            lines = [layout.AccessLine(e.at, self.actions.get(e.action, e.action), e.who,
                                       e.profession, e.structure, e.document_title)
                     for e in view.entries]
            yield self._small(run, "journal-des-acces.csv", layout.access_csv(lines))
        yield self._small(run, "LISEZMOI.txt", layout.readme(
            run.now, run.counts, log_intact=run.log_intact, fhir=run.fhir))

    async def _messages(self, run: _Run, account: AccountInfo) -> AsyncIterator[bytes]:
        refs = await self.messages.messages(account.id)
        subjects = await self.messages.subjects(account.id)
        folders: dict[int | None, tuple[str, int]] = {}
        for ref in refs:
            cid = ref.conversation_id
            if cid not in folders:
                folders[cid] = (layout.OTHER_FOLDER if cid is None else run.names.unique(
                    layout.conversation_folder(ref.internaldate, subjects.get(cid))), 0)
            folder, n = folders[cid]
            try:
                raw = await self.messages.raw(ref.id)
            except MssanteError:
                log.warning("export: a message could not be read, left out")
                continue
            folders[cid] = (folder, n + 1)
            name = run.names.unique(f"{folder}/{layout.message_name(n + 1, ref.internaldate)}")
            async for piece in _member(run.zip, name, raw, ref.internaldate, compress=True):
                yield piece
            run.counts["messages"] += 1

    async def _documents(self, run: _Run, account: AccountInfo) -> AsyncIterator[bytes]:
        assert self.documents is not None
        for doc in await self.documents.all_documents(account):
            try:
                _row, content = await self.documents.content(account, doc.id)
            except MssanteError:
                log.warning("export: a document could not be read, left out")
                continue
            name = run.names.unique(layout.document_file(doc.filename, doc.title))
            digest = await _sha256(content)
            async for piece in _member(run.zip, name, content, doc.date,
                                       compress=compressible(doc.content_type)):
                yield piece
            run.files[doc.id] = name
            run.index.append(layout.IndexRow(name, doc.title, doc.label, doc.label_fr,
                                             doc.date, doc.author, doc.content_type,
                                             len(content), digest, doc.masked))
            run.counts["documents"] += 1
        yield self._small(run, "documents/index.csv", layout.index_csv(run.index))
        yield self._small(run, "documents/index.json", layout.index_json(run.index))

    async def _profile(self, run: _Run, account: AccountInfo) -> AsyncIterator[bytes]:
        assert self.profile is not None
        data = await self.profile.profile(account)
        yield self._small(run, "profil/profil.json", _json(data))
        bundle = await self.profile.fhir_bundle(account, run.files)
        if bundle is not None:
            run.fhir = True
            async for piece in _member(run.zip, "profil/bundle-fhir.json", _json(bundle),
                                       run.now, compress=True):
                yield piece

    @staticmethod
    def _small(run: _Run, name: str, data: bytes) -> bytes:
        return run.zip.add(name, data, layout.local(run.now), compress=True)


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode()


async def _sha256(data: bytes) -> str:
    if len(data) < _THREAD_MIN:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


async def _member(zs: ZipStream, name: str, data: bytes, when: datetime, *,
                  compress: bool) -> AsyncIterator[bytes]:
    """One member, written a slice at a time; deflating large slices in a thread."""
    yield zs.begin(name, len(data), layout.local(when), compress=compress)
    view = memoryview(data)
    for start in range(0, len(data), SLICE):
        part = view[start:start + SLICE]
        if compress and len(part) >= _THREAD_MIN:
            yield await asyncio.to_thread(zs.write, part)
        else:
            yield zs.write(part)
    yield zs.end()
