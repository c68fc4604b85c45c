"""Alembic's environment: run by every Alembic command that ``mailserver.migrations`` issues.

The caller passes an open connection (``config.attributes["connection"]``), already in a
transaction: the whole upgrade commits or rolls back as one. The target metadata is the models'
(every module of ``mailserver.schema.TABLE_MODULES``). Revisions are rendered in batch mode so
one file runs on SQLite (table rebuilt) and PostgreSQL (``ALTER TABLE``).
"""

from __future__ import annotations

from typing import Any

from alembic import context

from mailserver.schema import metadata


def _drop_empty(_context: Any, _revision: Any, directives: list[Any]) -> None:
    """``mssante migrate --new``: no revision file when the models match the head."""
    if directives and directives[0].upgrade_ops.is_empty():
        directives[:] = []


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through 'mssante migrate' (it opens the database)")
    context.configure(connection=connection, target_metadata=metadata(),
                      render_as_batch=True, compare_type=True,
                      process_revision_directives=_drop_empty)
    with context.begin_transaction():
        context.run_migrations()


_run()
