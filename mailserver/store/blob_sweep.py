"""The orphan blob sweep: blob files no row points to, older than a safety margin, are removed.

A blob is written and fsync'd *before* the row that names it commits (``blobs.py``), so a crash
between the two, or a delivery that failed after writing its blob, leaves a file no row names.
The sweep lists the blob files older than ``[store] orphan_blob_margin_seconds`` (1 hour by
default) *first*, then reads every key the rows name (:data:`snapshot.BLOB_REFERENCES`, all
rows, inline or not, whatever the account's state: a closed account's archived rows keep
theirs), and removes the listed files no row names. A delivery in progress writes fresh files
(younger than the margin), so its blobs are never candidates. Job ``sweep_blobs`` runs it every
``orphan_sweep_seconds`` (``job_table``); ``mssante blobs sweep [--dry-run]`` runs it by hand.

The same on S3 (``s3blobs.py``): the objects under the prefix whose ``LastModified`` is older
than the margin (ListObjectsV2), the same check of the rows; the leftovers of writes cut short
are the multipart uploads begun before the margin, which are aborted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.blobs import BlobBackend
from mailserver.store.db import Database
from mailserver.store.jobs import JobInfo, Jobs
from mailserver.store.snapshot import BLOB_REFERENCES

__all__ = ["JOB_SWEEP_BLOBS", "BlobSweep", "SweepResult"]

log = logging.getLogger(__name__)

JOB_SWEEP_BLOBS = "sweep_blobs"


@dataclass(frozen=True)
class SweepResult:
    old: int
    """Blob files older than the margin."""
    orphans: tuple[str, ...]
    """Those no row names (removed unless a dry run)."""
    temp: int = 0
    """Temporary files of writes a crash cut short, older than the margin."""


async def _referenced(db: Database, candidates: set[str]) -> set[str]:
    """The keys among ``candidates`` that some row names."""
    keys = sorted(candidates)
    found: set[str] = set()
    async with db.session() as s:
        present = await _tables(s)
        for table, column in BLOB_REFERENCES:
            if table not in present:
                continue
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                names = ", ".join(f":k{j}" for j in range(len(chunk)))
                query = text(f"SELECT {column} FROM {table} WHERE {column} IN ({names})")  # noqa: S608 - constant names
                rows = await s.execute(query, {f"k{j}": k for j, k in enumerate(chunk)})
                found.update(r[0] for r in rows)
    return found


async def _tables(s: AsyncSession) -> set[str]:
    conn = await s.connection()
    return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


class BlobSweep:
    def __init__(self, db: Database, blobs: BlobBackend, *, margin: float,
                 interval: float) -> None:
        self.db = db
        self.blobs = blobs
        self.margin = margin
        self.interval = interval

    async def run_once(self, *, dry_run: bool = False) -> SweepResult:
        """One pass; see the module docstring."""
        cutoff = time.time() - self.margin
        count = 0
        orphans: list[str] = []
        async for batch in self.blobs.old_keys(cutoff):  # listed before the rows are read
            count += len(batch)
            named = await _referenced(self.db, set(batch)) if batch else set()
            found = sorted(set(batch) - named)
            if not dry_run:
                for key in found:
                    await self.blobs.delete(key)
            orphans += found
        temp = await self.blobs.remove_stale_temp(cutoff, dry_run=dry_run)
        if orphans or temp:
            log.info("blobs: %d orphan blob(s), %d temporary file(s) %s", len(orphans), temp,
                     "found" if dry_run else "removed")
        return SweepResult(count, tuple(sorted(orphans)), temp)

    async def handle_job(self, job: JobInfo) -> None:
        """Job ``sweep_blobs``: one pass, then the next one is scheduled."""
        await self.run_once()
        await self.schedule(self.interval, running=1)

    async def schedule(self, delay: float = 0.0, *, running: int = 0) -> None:
        """Enqueue a pass unless one is already waiting (``running``: this job itself)."""
        await Jobs(self.db).schedule_once(JOB_SWEEP_BLOBS, delay=delay, running=running)
