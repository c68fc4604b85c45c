"""Import of the national "Extraction Correspondance MSSanté" file (../shared/domain §9).

UTF-8, ``|``-separated, one header line, 31 columns; the address is the only key. The import is
idempotent: each row's content hash is stored, unchanged rows are skipped, changed rows updated,
new rows inserted. Rows are streamed and written in batches, so the ~535,000-row national file
never sits in memory whole.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import ValidationError
from mailserver.identifiers import is_valid_address, normalise_address
from mailserver.store.db import Database
from mailserver.store.models import DirectoryEntry

__all__ = ["ImportStats", "read_extraction", "read_rows", "import_extraction", "EXPECTED_COLUMNS"]

EXPECTED_COLUMNS = 31
REQUIRED = ("Type de BAL", "Adresse BAL")


@dataclass
class ImportStats:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def read_extraction(path: Path) -> Iterator[dict[str, str] | None]:
    """Yield each row as a dict keyed by header name; ``None`` for a malformed row.

    Raises:
        ValidationError: see :func:`read_rows`.
    """
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        yield from read_rows(fh, str(path))


def read_rows(lines: Iterable[str], source: str) -> Iterator[dict[str, str] | None]:
    """The rows of an extraction read from ``lines`` (text, ``newline=""``).

    Raises:
        ValidationError: empty, no ``Type de BAL``/``Adresse BAL`` column, not UTF-8, or a
            line the csv module refuses (a field over its 128 KiB limit).
    """
    reader = csv.reader(lines, delimiter="|", quoting=csv.QUOTE_NONE)
    try:
        yield from _rows(reader, source)
    except UnicodeDecodeError:
        raise ValidationError(f"{source}: not UTF-8 (after line {reader.line_num})") from None
    except csv.Error as exc:  # its text names the limit, never the row's content
        raise ValidationError(f"{source}: line {reader.line_num}: {exc}") from None


def _rows(reader: Iterator[list[str]], source: str) -> Iterator[dict[str, str] | None]:
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError(f"{source}: empty file") from None
    header = [h.strip() for h in header]
    for name in REQUIRED:
        if name not in header:
            raise ValidationError(f"{source}: not an MSSante extraction (no {name!r} column)")
    for row in reader:
        if not row or row == [""]:
            continue
        if len(row) != len(header):
            yield None
            continue
        yield dict(zip(header, (c.strip() for c in row), strict=True))


def _entry(row: dict[str, str]) -> DirectoryEntry | None:
    address = normalise_address(row.get("Adresse BAL", ""))
    bal = row.get("Type de BAL", "").upper()
    if not is_valid_address(address) or bal not in ("PER", "ORG", "APP"):
        return None
    digest = hashlib.sha256("|".join(row.values()).encode()).hexdigest()
    return DirectoryEntry(
        address=address, bal_type=bal,
        id_pp=row.get("Identifiant PP") or None,
        id_nat_pp=row.get("Identification nationale PP") or None,
        structure_id=row.get("Identification Structure") or None,
        last_name=row.get("Nom d'exercice") or None,
        first_name=row.get("Prénom d'exercice") or None,
        profession=row.get("Code Profession") or None,
        profession_label=row.get("Libellé Profession") or None,
        specialty=row.get("Libellé savoir-faire") or None,
        structure_name=row.get("Raison Sociale structure BAL") or None,
        row_hash=digest,
    )


async def import_extraction(db: Database, path: Path, *, batch: int = 2000,
                            progress: Callable[[int], None] | None = None) -> ImportStats:
    """Import (idempotently) the extraction file into ``directory_entries``."""
    stats = ImportStats()
    pending: list[DirectoryEntry] = []

    async def flush(entries: list[DirectoryEntry]) -> None:
        by_addr = {e.address: e for e in entries}

        async def op(s: AsyncSession) -> None:
            existing = {a: h for a, h in (await s.execute(
                select(DirectoryEntry.address, DirectoryEntry.row_hash).where(
                    DirectoryEntry.address.in_(list(by_addr))))).all()}
            for addr, e in by_addr.items():
                old = existing.get(addr)
                if old is None:
                    s.add(e)
                    stats.inserted += 1
                elif old != e.row_hash:
                    await s.merge(e)
                    stats.updated += 1
                else:
                    stats.unchanged += 1

        await db.write(op)

    for row in read_extraction(path):
        entry = _entry(row) if row is not None else None
        if entry is None:
            stats.rejected += 1
        else:
            pending.append(entry)
        if len(pending) >= batch:
            await flush(pending)
            if progress:
                progress(len(pending))
            pending = []
    if pending:
        await flush(pending)
        if progress:
            progress(len(pending))
    return stats


def count_rows(path: Path) -> int:
    with path.open("rb") as fh:
        return max(0, sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b"")) - 1)


