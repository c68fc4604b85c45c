"""patient conversation count

Revision 0006, after 0005; created 2026-11-30 17:59:37.716779.
Forward-only: there is no downgrade (restore a backup instead).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The inbox's page count is read from the account row instead of counting the patient's
    # conversations at each page: existing patients get their count.
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_count', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE accounts SET conversation_count = (SELECT count(*) FROM conversations "
               "WHERE conversations.patient_account_id = accounts.id) WHERE EXISTS (SELECT 1 "
               "FROM conversations WHERE conversations.patient_account_id = accounts.id)")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore a backup to go back")
