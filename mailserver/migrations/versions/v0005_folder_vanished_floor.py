"""folder vanished floor for pruned tombstones

Revision 0005, after 0004; created 2026-11-30 14:27:46.166849.
Forward-only: there is no downgrade (restore a backup instead).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing folders: nothing pruned yet (RFC 7162 3.2.5 answers stay exact).
    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vanished_floor', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore a backup to go back")
