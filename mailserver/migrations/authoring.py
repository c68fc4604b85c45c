"""For developers: a new revision generated from the difference between the models and the head.

The head schema is built in a scratch SQLite database, compared with the models by Alembic's
autogenerate, and the difference is written to ``versions/v<NNNN>_<slug>.py`` in batch mode (the
same file then runs on SQLite and PostgreSQL). Read it before committing: renames come out as a
drop and an add, and data changes are never generated.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from mailserver.migrations.runner import alembic_config, upgrade
from mailserver.store.db import migration_engine

__all__ = ["new_revision"]


def _next_id(versions: Path | None) -> str:
    script = ScriptDirectory.from_config(alembic_config(versions=versions))
    numbers = [int(r.revision) for r in script.walk_revisions() if r.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


async def new_revision(message: str, *, versions: Path | None = None) -> Path | None:
    """Write the revision from the head to the models; None when they already agree.
    ``versions``: write there instead of ``versions/`` (tests)."""
    with tempfile.TemporaryDirectory(prefix="mssante-rev-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'head.db'}"
        await upgrade(url, versions=versions)
        engine = migration_engine(url)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(_generate, message, versions)
        finally:
            await engine.dispose()


def _generate(conn: Connection, message: str, versions: Path | None) -> Path | None:
    script = command.revision(alembic_config(conn, versions), message=message,
                              autogenerate=True, rev_id=_next_id(versions))
    if script is None or isinstance(script, list):
        return None
    return Path(script.path)
