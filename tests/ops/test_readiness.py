"""``/readyz`` follows the database and the blob folder, and recovers without a restart."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailserver.app import Services
from mailserver.config import Config, ListenConfig
from mailserver.runtime import Runtime, start_runtime
from tests.conftest import _pg_exec
from tests.ops.server import http_get


@pytest.fixture
async def admin(config: Config, services: Services) -> AsyncIterator[Runtime]:
    rt = await start_runtime(config, ListenConfig(metrics="127.0.0.1:0"), services=services)
    try:
        yield rt
    finally:
        await rt.close()


async def _readyz(rt: Runtime) -> tuple[int, str]:
    host, port = rt.ports["metrics"]
    return await asyncio.to_thread(http_get, f"http://{host}:{port}/readyz")


async def _database_gone(services: Services, data_dir: Path) -> None:
    """Take the database away for real: SQLite's file replaced by a folder; PostgreSQL's
    database closed to connections. The pool's connections are dropped."""
    if services.db.is_sqlite:
        db = data_dir / "mssante.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                Path(f"{db}{suffix}").rename(f"{db}{suffix}.away")
        db.mkdir()
    else:
        name = services.db.url.rpartition("/")[2]
        await _pg_exec(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        await _pg_exec(f"{terminate}'{name}'")
    await services.db.engine.dispose()


async def _database_back(services: Services, data_dir: Path) -> None:
    if services.db.is_sqlite:
        db = data_dir / "mssante.db"
        db.rmdir()
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}.away").exists():
                Path(f"{db}{suffix}.away").rename(f"{db}{suffix}")
    else:
        name = services.db.url.rpartition("/")[2]
        await _pg_exec(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


async def test_readyz_follows_the_database(admin: Runtime, services: Services,
                                           data_dir: Path) -> None:
    assert await _readyz(admin) == (200, "ready\n")
    await _database_gone(services, data_dir)
    try:
        status, text = await _readyz(admin)
        assert status == 503
        assert text.startswith("database: ")
    finally:
        await _database_back(services, data_dir)
    assert await _readyz(admin) == (200, "ready\n")


async def test_readyz_follows_the_blob_folder(admin: Runtime, config: Config) -> None:
    blobs = config.path(config.store.blob_dir)
    shutil.rmtree(blobs, ignore_errors=True)
    blobs.write_bytes(b"not a folder")
    try:
        status, text = await _readyz(admin)
        assert status == 503
        assert text.startswith("blobs: ")
    finally:
        blobs.unlink()
    assert await _readyz(admin) == (200, "ready\n")
