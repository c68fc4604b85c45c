"""Faults for the operations tests: the database taken away for real, and given back."""

from __future__ import annotations

from pathlib import Path

from mailserver.app import Services
from tests.conftest import _pg_exec

__all__ = ["database_back", "database_gone"]


async def database_gone(services: Services, data_dir: Path) -> None:
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


async def database_back(services: Services, data_dir: Path) -> None:
    if services.db.is_sqlite:
        db = data_dir / "mssante.db"
        db.rmdir()
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}.away").exists():
                Path(f"{db}{suffix}.away").rename(f"{db}{suffix}")
    else:
        name = services.db.url.rpartition("/")[2]
        await _pg_exec(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
