"""Upgrading databases written by the last release without migrations (SQLite fixture, and the
same data in PostgreSQL), and the start-up refusals around the schema revision."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from mailserver.app import open_services
from mailserver.cli.migrate import migrate_data_dir
from mailserver.config import load
from mailserver.errors import SchemaMismatch
from mailserver.migrations import head, schema_status
from mailserver.migrations.baseline import baseline_metadata
from mailserver.store.db import migration_engine
from tests.conftest import PG_URL
from tests.ops.migration_fixture import (
    assert_data_intact,
    copy_fixture,
    copy_into_postgres,
    with_database_url,
)
from tests.ops.server import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MSSANTE_LOG_LEVEL": "WARNING"}


def _mssante(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mailserver", *args], capture_output=True, text=True, cwd=ROOT,
        env=ENV, timeout=120, check=False)


async def test_last_release_sqlite_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    data = copy_fixture(tmp_path / "data")
    url = load(data / "mssante.toml").database_url
    assert (await schema_status(url)).legacy
    done = _mssante("migrate", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert f"migrated from pre-migrations to {head()}" in done.stdout
    again = _mssante("migrate", "--data-dir", str(data))
    assert again.returncode == 0 and f"already at {head()}" in again.stdout
    services = await open_services(load(data / "mssante.toml"), fast_passwords=True)
    try:
        await assert_data_intact(services)
    finally:
        await services.close()


@pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL (PostgreSQL)")
async def test_last_release_postgres_database_is_migrated_with_its_data(
        tmp_path: Path, database_url: str) -> None:
    data = copy_fixture(tmp_path / "data")
    await copy_into_postgres(data / "mssante.db", database_url, baseline_metadata())
    (data / "mssante.db").unlink()
    with_database_url(data, database_url)
    config = load(data / "mssante.toml")
    assert (await schema_status(database_url)).legacy
    with pytest.raises(SchemaMismatch, match="run `mssante migrate` or start with --migrate"):
        await open_services(config, fast_passwords=True)
    done = await migrate_data_dir(config)
    assert done is not None and (done.before, done.after) == ("pre-migrations", head())
    services = await open_services(config, fast_passwords=True)
    try:
        await assert_data_intact(services)
        # Sequences continue after the copied rows: a new account gets a fresh id.
        await services.directory.add_patient(ins="269054958815780", name="Nouvelle Patiente")
    finally:
        await services.close()


@pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL (PostgreSQL)")
async def test_an_index_built_beforehand_without_blocking_is_kept(
        tmp_path: Path, database_url: str) -> None:
    """docs/SCALING.md: on a large database the operator builds revision 0007's index with
    CREATE INDEX CONCURRENTLY while the old release serves; the upgrade then finds it."""
    data = copy_fixture(tmp_path / "data")
    await copy_into_postgres(data / "mssante.db", database_url, baseline_metadata())
    (data / "mssante.db").unlink()
    with_database_url(data, database_url)
    engine = migration_engine(database_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(
                "CREATE INDEX CONCURRENTLY ix_messages_folder_unseen ON messages "
                "(folder_id, uid) WHERE strpos(flags, '\\Seen') = 0"))
        done = await migrate_data_dir(load(data / "mssante.toml"))
        assert done is not None and done.after == head()
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_folder_unseen'"
            ))).all()
    finally:
        await engine.dispose()
    assert len(rows) == 1 and "strpos(flags, '\\Seen'::text) = 0" in rows[0][0]


async def test_serve_refuses_a_schema_behind_then_migrates_with_the_flag(tmp_path: Path) -> None:
    data = await asyncio.to_thread(copy_fixture, tmp_path / "data", keys_for_serving=True)
    refused = _mssante("serve", "--data-dir", str(data), "--smtp", "127.0.0.1:0")
    assert refused.returncode == 2
    assert (f"the database schema is at pre-migrations, this release needs {head()}: run "
            "`mssante migrate` or start with --migrate") in refused.stderr
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailserver", "serve", "--data-dir", str(data), "--migrate",
        "--smtp", "127.0.0.1:0", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=ENV)
    assert proc.stdout is not None
    lines = []
    while (line := (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()) and \
            line.strip() != "ready":
        lines.append(line)
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
    await asyncio.wait_for(proc.wait(), 30)
    assert line.strip() == "ready", (lines, err[-2000:])
    assert f"mssante: database schema migrated from pre-migrations to {head()}\n" in lines
    assert (await schema_status(load(data / "mssante.toml").database_url)).current == head()


async def test_a_schema_newer_than_this_release_is_refused(tmp_path: Path) -> None:
    data = copy_fixture(tmp_path / "data")
    config = load(data / "mssante.toml")
    await migrate_data_dir(config)
    engine = migration_engine(config.database_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    for migrate in (False, True):
        with pytest.raises(SchemaMismatch, match="at 9999, which this release does not know"):
            await open_services(config, fast_passwords=True, migrate=migrate)
    status = _mssante("migrate", "--data-dir", str(data), "--status")
    assert status.returncode == 1 and f"database schema: 9999; this release: {head()}" in \
        status.stdout
