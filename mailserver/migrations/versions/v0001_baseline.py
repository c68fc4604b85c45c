"""Baseline: the schema of the last release without migrations (``baseline.py``).

Forward-only: there is no downgrade (restore a backup instead).
"""

from __future__ import annotations

from alembic import op

from mailserver.migrations.baseline import baseline_metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    baseline_metadata().create_all(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore a backup to go back")
