"""Where a database's schema stands, and bringing it to this release's (Alembic, forward-only).

Theory of operation: Alembic records the database's revision in ``alembic_version``; this
release's revisions are the files in ``versions/``, the last one the *head*. A database is

- empty (no table): created by upgrading to the head (``mssante init``, the first start);
- from before migrations (tables but no ``alembic_version``): brought to the baseline
  (``legacy.py``), stamped 0001, then upgraded;
- behind (a known revision before the head): upgraded only when asked (``mssante migrate``,
  ``serve --migrate``), otherwise refused with the command to run;
- ahead (a revision this release does not know): refused, a newer release wrote it.

An upgrade runs in one transaction (PostgreSQL and SQLite both have transactional DDL), under
an advisory lock on PostgreSQL so processes starting together upgrade once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from mailserver.errors import SchemaMismatch, StoreError
from mailserver.migrations.legacy import to_baseline
from mailserver.store.db import migration_engine

__all__ = ["BASELINE", "SchemaStatus", "Upgrade", "alembic_config", "head", "schema_status",
           "upgrade", "ensure_schema", "PRE_MIGRATIONS"]

log = logging.getLogger(__name__)
# Alembic says "Context impl ..." at every check; the upgrades are logged here instead.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

BASELINE = "0001"
PRE_MIGRATIONS = "pre-migrations"
"""How a database from before migrations is named in messages (it has no revision)."""
_LOCK_ID = 0x6D7373616E7465  # pg_advisory_xact_lock key: "mssante"
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    """The database's revision; None when it has no ``alembic_version`` row."""
    head: str
    has_tables: bool
    known: bool
    """``current`` is one of this release's revisions."""

    @property
    def empty(self) -> bool:
        return self.current is None and not self.has_tables

    @property
    def legacy(self) -> bool:
        return self.current is None and self.has_tables

    @property
    def label(self) -> str:
        return self.current or (PRE_MIGRATIONS if self.has_tables else "empty")


@dataclass(frozen=True)
class Upgrade:
    before: str
    after: str
    created: frozenset[str] = frozenset()
    """Tables created while bringing a pre-migration database to the baseline."""


def alembic_config(connection: Connection | None = None, versions: Path | None = None) -> Config:
    """Alembic's configuration for this package (no ini file); ``versions``: another folder of
    revisions than ``versions/`` (the tests of generated revisions work on a copy)."""
    cfg = Config()
    here = Path(__file__).resolve().parent
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(versions or here / "versions"))
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head(versions: Path | None = None) -> str:
    """This release's head revision."""
    heads = ScriptDirectory.from_config(alembic_config(versions=versions)).get_heads()
    if len(heads) != 1:
        raise StoreError(f"the migrations have {len(heads)} heads: merge them ({heads})")
    return heads[0]


def _status(conn: Connection, versions: Path | None = None) -> SchemaStatus:
    current = MigrationContext.configure(conn).get_current_revision()
    tables = set(inspect(conn).get_table_names()) - {VERSION_TABLE}
    script = ScriptDirectory.from_config(alembic_config(versions=versions))
    known = current is not None and current in {r.revision for r in script.walk_revisions()}
    return SchemaStatus(current, head(versions), bool(tables), known)


def _upgrade(conn: Connection, versions: Path | None = None) -> Upgrade:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
    status = _status(conn, versions)
    if status.current is not None and not status.known:
        raise _ahead(status)
    created: frozenset[str] = frozenset()
    cfg = alembic_config(conn, versions)
    if status.legacy:
        created = to_baseline(conn)
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise StoreError(f"migration left {len(broken)} rows breaking foreign keys")
    after = MigrationContext.configure(conn).get_current_revision() or "?"
    if after != status.current:
        log.info("schema: upgraded from %s to %s", status.label, after)
    return Upgrade(status.label, after, created)


async def schema_status(url: str) -> SchemaStatus:
    engine = migration_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_status)
    finally:
        await engine.dispose()


async def upgrade(url: str, *, versions: Path | None = None) -> Upgrade:
    """Bring the database at ``url`` to the head (creating it when empty)."""
    engine = migration_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(_upgrade, versions)
    finally:
        await engine.dispose()


def _ahead(status: SchemaStatus) -> SchemaMismatch:
    return SchemaMismatch(f"the database schema is at {status.label}, which this release does "
                          f"not know (its head is {status.head}): a newer release wrote it; "
                          "run that release (migrations are forward-only)")


async def ensure_schema(url: str, *, migrate: bool) -> Upgrade | None:
    """Check the schema before serving: an empty database is created; one behind is upgraded
    when ``migrate``, else refused; one ahead is refused. None when it was already at head."""
    status = await schema_status(url)
    if status.current == status.head:
        return None
    if status.current is not None and not status.known:
        raise _ahead(status)
    if not status.empty and not migrate:
        raise SchemaMismatch(f"the database schema is at {status.label}, this release needs "
                             f"{status.head}: run `mssante migrate` or start with --migrate")
    return await upgrade(url)
