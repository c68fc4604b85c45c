"""Bring a database from before migrations to the baseline (revision 0001).

Those databases were made by ``create_all`` and upgraded at each start-up by adding what was
missing: tables, nullable columns, indexes. One made by an older release may miss some of the
baseline's; they are added here the same way, then the database is stamped 0001 (by the caller)
and upgraded like any other.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Table, inspect
from sqlalchemy.schema import CreateColumn

from mailserver.errors import SchemaMismatch
from mailserver.migrations.baseline import baseline_metadata

__all__ = ["to_baseline"]

log = logging.getLogger(__name__)


def to_baseline(conn: Connection) -> frozenset[str]:
    """Add the baseline's missing tables, columns and indexes; returns the tables created."""
    md = baseline_metadata()
    before = set(inspect(conn).get_table_names())
    md.create_all(conn)  # only the missing tables (checkfirst)
    inspector = inspect(conn)
    for table in md.sorted_tables:
        if table.name in before:
            _add_columns(conn, table, {c["name"] for c in inspector.get_columns(table.name)})
            _add_indexes(conn, table, {i["name"] for i in inspector.get_indexes(table.name)})
    created = frozenset(md.tables) - before
    if created:
        log.info("schema: created tables %s", ", ".join(sorted(created)))
    return created


def _add_columns(conn: Connection, table: Table, present: set[str]) -> None:
    for column in table.columns:
        if column.name in present:
            continue
        if not column.nullable and column.server_default is None:
            raise SchemaMismatch(f"cannot add {table.name}.{column.name} to a database from "
                                 "before migrations: upgrade through an older release first")
        ddl = CreateColumn(column).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
        log.info("schema: added column %s.%s", table.name, column.name)


def _add_indexes(conn: Connection, table: Table, present: set[str | None]) -> None:
    for index in table.indexes:
        if index.name and index.name not in present:
            index.create(conn)
            log.info("schema: added index %s", index.name)
