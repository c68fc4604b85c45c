"""Schema migrations (Alembic, forward-only): see ``runner.py`` for the theory of operation and
docs/ARCHITECTURE.md ("Schema migrations") for adding a table or a column."""

from __future__ import annotations

from mailserver.migrations.runner import (
    BASELINE,
    PRE_MIGRATIONS,
    SchemaStatus,
    Upgrade,
    alembic_config,
    ensure_schema,
    head,
    schema_status,
    upgrade,
)

__all__ = ["BASELINE", "PRE_MIGRATIONS", "SchemaStatus", "Upgrade", "alembic_config",
           "ensure_schema", "head", "schema_status", "upgrade"]
