"""Turn a test database into one made by the last release without migrations: no
``alembic_version``, and none of the tables later revisions added (such a release could not
have had them, nor the columns and indexes they added to older tables)."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mailserver.migrations.baseline import baseline_metadata

__all__ = ["make_pre_migration"]


async def make_pre_migration(conn: AsyncConnection) -> None:
    baseline = baseline_metadata().tables
    names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    for name in names:
        if name not in baseline:  # alembic_version and the tables added since the baseline
            await conn.execute(text(f'DROP TABLE "{name}"'))
            continue
        columns = await conn.run_sync(_column_names, name)
        for column in columns:
            if column not in baseline[name].columns:  # added by a later revision
                await conn.execute(text(f'ALTER TABLE "{name}" DROP COLUMN "{column}"'))
        indexes = await conn.run_sync(_index_names, name)
        for index in indexes - {i.name for i in baseline[name].indexes}:  # added since
            await conn.execute(text(f'DROP INDEX "{index}"'))


def _index_names(conn: Connection, table: str) -> set[str]:
    return {i["name"] for i in inspect(conn).get_indexes(table)  # not those of constraints
            if i["name"] and "duplicates_constraint" not in i}


def _column_names(conn: Connection, table: str) -> list[str]:
    return [col["name"] for col in inspect(conn).get_columns(table)]
