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
from tests.ops.faults import database_back, database_gone
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


async def test_readyz_follows_the_database(admin: Runtime, services: Services,
                                           data_dir: Path) -> None:
    assert await _readyz(admin) == (200, "ready\n")
    await database_gone(services, data_dir)
    try:
        status, text = await _readyz(admin)
        assert status == 503
        assert text.startswith("database: ")
    finally:
        await database_back(services, data_dir)
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
