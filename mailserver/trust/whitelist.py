"""Parser for the national MSSanté whitelist ("liste blanche").

Theory of operation
-------------------
The ANS publishes one XML document (optionally gzip-compressed)::

    <ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">
      <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>
      <ListeDomaines>
        <Domaine>
          <Nom>…</Nom> <Description>…</Description>
          <DNCertificatOperateur>CN=…,OU=…,O=…,ST=…,C=FR</DNCertificatOperateur>
          <ResponsableContact>…</ResponsableContact>
          <SupportContact>…</SupportContact> <DateMAJ>…</DateMAJ>
        </Domaine> …

There is one ``Domaine`` per (domain, operator certificate): a domain appears
once per certificate allowed to send for it.

The parser is sans-I/O friendly: :func:`parse_whitelist` takes bytes, a path
or a binary file and streams it with ``iterparse`` (defusedxml: no DTD, no
entities, no external references), clearing each ``Domaine`` once read, so a
file of several megabytes needs little memory. Unknown elements are ignored;
an entry without ``Nom`` makes the whole document invalid (the caller keeps
its last good copy). An entry whose ``Nom`` is present but is not a domain
name (the 2025 file holds one e-mail address there) is not trusted: it is
reported in :attr:`Whitelist.rejected` instead of failing the whole update.
Every failure surfaces as :class:`WhitelistError`.
"""

from __future__ import annotations

import gzip
import io
import os
import xml.etree.ElementTree as ET  # noqa: S405 - only for the Element type / ParseError
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, cast

import defusedxml  # type: ignore[import-untyped, unused-ignore]
import defusedxml.ElementTree as DET  # type: ignore[import-untyped, unused-ignore]

from .dn import DnParseError, parse_dn
from .domains import InvalidDomainError, normalise_domain

__all__ = [
    "NAMESPACE",
    "RejectedEntry",
    "Whitelist",
    "WhitelistDiff",
    "WhitelistEntry",
    "WhitelistError",
    "diff",
    "parse_whitelist",
]

NAMESPACE = "https://listeblanche.mssante.fr/schema"
_ROOT = "ListeBlancheMSSante"
_MAX_TEXT = 4096  # longer field text is cut: no legitimate field is that long


class WhitelistError(Exception):
    """The whitelist document is malformed; keep the previous copy."""


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    """One ``Domaine`` element: a domain and one operator certificate DN.

    Attributes:
        domain: normalised domain name (lower-case A-labels).
        description: free text, as published.
        certificate_dn: subject DN of the operator's certificate, or None.
        responsible_contact: ``ResponsableContact`` text, or None.
        support_contact: ``SupportContact`` text, or None.
        updated: ``DateMAJ`` parsed, or None when absent or unreadable.
    """

    domain: str
    description: str | None = None
    certificate_dn: str | None = None
    responsible_contact: str | None = None
    support_contact: str | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """An entry left out because its ``Nom`` is not a domain name.

    Attributes:
        index: 0-based position among the ``Domaine`` elements.
        name: the published ``Nom`` text.
        reason: why it was rejected.
    """

    index: int
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Whitelist:
    """A parsed whitelist.

    Attributes:
        generated: ``DateDeGeneration`` or None when absent.
        entries: accepted entries in document order.
        rejected: entries left out (see :class:`RejectedEntry`).
        unclosed_root: the document ended after ``</ListeDomaines>`` without
            closing its root element (tolerated, as the real file does it).
    """

    generated: datetime | None
    entries: tuple[WhitelistEntry, ...]
    rejected: tuple[RejectedEntry, ...] = ()
    unclosed_root: bool = False
    _by_domain: Mapping[str, tuple[WhitelistEntry, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[WhitelistEntry]] = {}
        for entry in self.entries:
            index.setdefault(entry.domain, []).append(entry)
        object.__setattr__(self, "_by_domain", {k: tuple(v) for k, v in index.items()})

    @property
    def domains(self) -> frozenset[str]:
        """All listed domains."""
        return frozenset(self._by_domain)

    def entries_for(self, domain: str) -> tuple[WhitelistEntry, ...]:
        """Entries of one (already normalised) domain, empty if unlisted."""
        return self._by_domain.get(domain, ())

    def dns_for(self, domain: str) -> frozenset[str]:
        """Certificate DNs listed for one (already normalised) domain."""
        return frozenset(
            e.certificate_dn for e in self.entries_for(domain) if e.certificate_dn
        )


@dataclass(frozen=True, slots=True)
class WhitelistDiff:
    """What changed between two whitelists.

    Attributes:
        added_domains: domains only in the new list.
        removed_domains: domains only in the old list.
        dn_added: for domains in both lists, DNs newly listed.
        dn_removed: for domains in both lists, DNs no longer listed.
    """

    added_domains: frozenset[str]
    removed_domains: frozenset[str]
    dn_added: Mapping[str, frozenset[str]]
    dn_removed: Mapping[str, frozenset[str]]

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not (self.added_domains or self.removed_domains or self.dn_added or self.dn_removed)


def diff(old: Whitelist, new: Whitelist) -> WhitelistDiff:
    """Compare two whitelists domain by domain and DN by DN.

    DN strings are compared after canonicalisation (see :mod:`.dn`), so a
    re-ordered or re-spaced DN is not reported as a change.
    """
    def canon(values: frozenset[str]) -> dict[object, str]:
        out: dict[object, str] = {}
        for value in values:
            try:
                out[parse_dn(value)] = value
            except DnParseError:
                out[value] = value
        return out

    old_domains, new_domains = old.domains, new.domains
    dn_added: dict[str, frozenset[str]] = {}
    dn_removed: dict[str, frozenset[str]] = {}
    for domain in sorted(old_domains & new_domains):
        before, after = canon(old.dns_for(domain)), canon(new.dns_for(domain))
        added = frozenset(after[k] for k in after.keys() - before.keys())
        removed = frozenset(before[k] for k in before.keys() - after.keys())
        if added:
            dn_added[domain] = added
        if removed:
            dn_removed[domain] = removed
    return WhitelistDiff(
        added_domains=new_domains - old_domains,
        removed_domains=old_domains - new_domains,
        dn_added=dn_added,
        dn_removed=dn_removed,
    )


def _local(tag: object) -> tuple[str, str]:
    """Split ``{ns}local`` into (ns, local)."""
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _text(elem: ET.Element) -> str | None:
    text = "".join(elem.itertext()).strip()
    if not text:
        return None
    return text[:_MAX_TEXT]


def _parse_datetime(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _open(source: bytes | str | os.PathLike[str] | IO[bytes]) -> IO[bytes]:
    if isinstance(source, bytes):
        stream: IO[bytes] = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise WhitelistError(f"cannot open whitelist: {exc.strerror}") from exc
    else:
        stream = source
    head = stream.read(2)
    if stream.seekable():
        stream.seek(-len(head), io.SEEK_CUR)
    else:
        stream = io.BytesIO(head + stream.read())
    if head == b"\x1f\x8b":
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    return stream


def _iter_events(stream: IO[bytes]) -> Iterator[tuple[str, ET.Element]]:
    try:
        for event, elem in DET.iterparse(
            stream, events=("start", "end"), forbid_dtd=True,
            forbid_entities=True, forbid_external=True,
        ):
            yield event, elem
    except (ET.ParseError, defusedxml.DefusedXmlException) as exc:
        raise WhitelistError(f"malformed whitelist XML: {type(exc).__name__}") from exc
    except (LookupError, ValueError, UnicodeError) as exc:
        # An unknown or unsupported encoding in the XML declaration (found by tests/fuzz).
        raise WhitelistError(f"unreadable whitelist encoding: {type(exc).__name__}") from exc
    except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip
        raise WhitelistError("unreadable whitelist stream") from exc


def parse_whitelist(source: bytes | str | os.PathLike[str] | IO[bytes]) -> Whitelist:
    """Parse the national whitelist.

    Args:
        source: the document as bytes, a file path, or a binary stream;
            gzip-compressed input is detected and decompressed.

    Returns:
        The parsed :class:`Whitelist`.

    Raises:
        WhitelistError: unreadable or malformed XML, DTD or entities present,
            wrong root element or namespace, a ``Domaine`` without ``Nom``.
    """
    stream = _open(source)
    try:
        return _parse_stream(stream)
    finally:
        if not isinstance(source, (bytes,)) and stream is not source:
            stream.close()


def _parse_stream(stream: IO[bytes]) -> Whitelist:
    generated: datetime | None = None
    entries: list[WhitelistEntry] = []
    rejected: list[RejectedEntry] = []
    depth = 0
    root_seen = list_closed = unclosed_root = False
    index = 0
    try:
        for event, elem in _iter_events(stream):
            ns, local = _local(elem.tag)
            if event == "start":
                depth += 1
                if depth == 1:
                    if local != _ROOT or ns not in (NAMESPACE, ""):
                        raise WhitelistError("not a ListeBlancheMSSante document")
                    root_seen = True
                continue
            depth -= 1
            if ns not in (NAMESPACE, ""):
                continue  # foreign-namespace extension: ignored
            if local == "ListeDomaines" and depth == 1:
                list_closed = True
            if local == "DateDeGeneration" and depth == 1:
                text = _text(elem)
                generated = _parse_datetime(text)
                if text is not None and generated is None:
                    raise WhitelistError("unreadable DateDeGeneration")
            elif local == "Domaine" and depth == 2:
                entry = _entry(elem, index, rejected)
                if entry is not None:
                    entries.append(entry)
                index += 1
                elem.clear()
    except WhitelistError as exc:
        # The 2025-03-13 publication ends right after </ListeDomaines>, without
        # </ListeBlancheMSSante>. Accept exactly that (expat "no element
        # found" at EOF once the list is complete); a file cut anywhere inside
        # the list still fails.
        cause = exc.__cause__
        if not (list_closed and isinstance(cause, ET.ParseError) and cause.code == 3):
            raise
        unclosed_root = True
    if not root_seen:
        raise WhitelistError("empty whitelist document")
    return Whitelist(
        generated=generated,
        entries=tuple(entries),
        rejected=tuple(rejected),
        unclosed_root=unclosed_root,
    )


def _entry(elem: ET.Element, index: int, rejected: list[RejectedEntry]) -> WhitelistEntry | None:
    fields: dict[str, str | None] = {}
    for child in elem:
        ns, local = _local(child.tag)
        if ns in (NAMESPACE, "") and local not in fields:
            fields[local] = _text(child)
    name = fields.get("Nom")
    if name is None:
        raise WhitelistError(f"Domaine #{index} has no Nom")
    try:
        domain = normalise_domain(name)
    except InvalidDomainError as exc:
        rejected.append(RejectedEntry(index=index, name=name, reason=str(exc)))
        return None
    return WhitelistEntry(
        domain=domain,
        description=fields.get("Description"),
        certificate_dn=fields.get("DNCertificatOperateur"),
        responsible_contact=fields.get("ResponsableContact"),
        support_contact=fields.get("SupportContact"),
        updated=_parse_datetime(fields.get("DateMAJ")),
    )
