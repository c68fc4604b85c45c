"""unseen index

Revision 0007, after 0006; created 2026-12-01 05:55:02.389466.
Forward-only: there is no downgrade (restore a backup instead).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SELECT's [UNSEEN n] reads the lowest UID without \Seen: a partial index of the unseen
    # messages answers it in one index probe, where the folder's read messages were walked
    # (115 ms for 100 k read ones). The predicates are copied from models.UNSEEN_WHERE (a
    # revision never imports the models, which move on).
    if op.get_context().dialect.name == "postgresql":
        # Building it reads the whole table while writes to it wait: on a large database,
        # build it beforehand without blocking (docs/SCALING.md, "Upgrading: indexes
        # built beforehand"):
        #   CREATE INDEX CONCURRENTLY ix_messages_folder_unseen ON messages (folder_id, uid)
        #       WHERE strpos(flags, '\Seen') = 0;
        # and this finds it.
        op.create_index('ix_messages_folder_unseen', 'messages', ['folder_id', 'uid'],
                        postgresql_where=sa.text("strpos(flags, '\\Seen') = 0"),
                        if_not_exists=True)
        return
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_folder_unseen', ['folder_id', 'uid'], unique=False,
                              sqlite_where=sa.text("instr(flags, '\\Seen') = 0"))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore a backup to go back")
