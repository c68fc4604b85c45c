"""Consistent copies of an SQLite data directory's storage, for ``mssante backup``/``restore``.

Theory of operation: a blob is written and fsync'd *before* the row that points at it commits,
and a blob is never changed once written (new content gets a new random name). So a backup
links (or copies) the blob files, then takes the database snapshot with SQLite's online backup
API (one step: one read transaction, a consistent state while the server keeps writing), then
links the blobs written in between. Every blob a row of the snapshot points at is then in the
copy (a hard link keeps a blob's bytes even if the server deletes it afterwards); blobs no row
of the snapshot points at are dropped from the copy.

The tables that name blobs are listed in :data:`BLOB_REFERENCES` (by name: the store knows no
bridge code). PostgreSQL and object stores have their own tools (``pg_dump``,
``pg_basebackup``, bucket versioning); this module copies SQLite and local files only.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BLOB_REFERENCES", "sqlite_backup", "referenced_blobs", "master_key_ids",
           "quick_check", "blob_files", "link_blobs", "blob_path"]

BLOB_REFERENCES = (("messages", "blob_key"), ("dossier_documents", "storage_key"),
                   ("prepared_exports", "blob_key"))
"""(table, column) naming a blob (where the row has a ``content_enc`` column: only when it is
NULL, the content not inline): messages (``mailserver/store/mailstore.py``), documents
(``dossier_bridge``) and prepared exports (``store/prepared_exports.py``); a test checks that
every blob column is listed."""

KEY_REFERENCES = (("mailbox_keys", "master_key_id"), ("queue_keys", "master_key_id"))
"""(table, column) naming the master key that wraps a data key."""

_HEX = frozenset("0123456789abcdef")


def sqlite_backup(source: Path, target: Path) -> None:
    """Copy the database ``source`` to ``target`` with SQLite's online backup API, in one step
    (a consistent snapshot; writers in other processes are not blocked in WAL mode)."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def referenced_blobs(database: Path) -> set[str]:
    """The blob keys the rows of ``database`` point at."""
    db = sqlite3.connect(database)
    try:
        present = _tables(db)
        keys: set[str] = set()
        for table, column in BLOB_REFERENCES:
            if table in present:
                columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}  # noqa: S608
                # Rows with inline content name no blob; a table without inline content names
                # one wherever the column is set.
                inline = "content_enc" in columns
                where = "content_enc IS NULL" if inline else f"{column} IS NOT NULL"
                query = f"SELECT {column} FROM {table} WHERE {where}"  # noqa: S608 - constants
                keys.update(r[0] for r in db.execute(query))
        return keys
    finally:
        db.close()


def master_key_ids(database: Path) -> set[str]:
    """The ids of the master keys that wrap the data keys of ``database``."""
    db = sqlite3.connect(database)
    try:
        present = _tables(db)
        ids: set[str] = set()
        for table, column in KEY_REFERENCES:
            if table in present:
                ids.update(r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM {table}"))  # noqa: S608
        return ids
    finally:
        db.close()


def quick_check(database: Path) -> str:
    """SQLite's ``PRAGMA quick_check``: ``"ok"`` or the problems found."""
    db = sqlite3.connect(database)
    try:
        return "; ".join(str(r[0]) for r in db.execute("PRAGMA quick_check"))
    finally:
        db.close()


def blob_path(root: Path, key: str) -> Path:
    """Where :class:`~mailserver.store.blobs.LocalBlobStore` keeps blob ``key``."""
    return root / key[:2] / key[2:4] / key


def blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(key, path) of every blob under ``root`` (temporary files skipped)."""
    if not root.is_dir():
        return
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name and set(name) <= _HEX:
                yield name, Path(dirpath) / name


def link_blobs(source: Path, target: Path, keys: set[str] | None = None) -> tuple[int, int]:
    """Hard-link (copy when linking fails, e.g. across file systems) the blobs of ``source``
    missing from ``target``; only ``keys`` when given. Returns (linked, copied)."""
    linked = copied = 0
    for key, path in blob_files(source):
        dest = blob_path(target, key)
        if (keys is not None and key not in keys) or dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
            linked += 1
        except FileNotFoundError:
            continue  # deleted meanwhile: no row of a later snapshot points at it
        except OSError:
            try:
                shutil.copy2(path, dest)
            except FileNotFoundError:
                continue
            copied += 1
    return linked, copied
