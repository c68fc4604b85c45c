"""64-bit ids

Revision 0004, after 0003; created 2026-11-30 14:30:00.
Forward-only: there is no downgrade (restore a backup instead).

Every surrogate key, and every column naming one (foreign keys, and the columns that name a
row without a constraint: ``jobs.message_id``, ``audit_events.account_id``...), becomes BIGINT
on PostgreSQL, with the sequences behind the keys: int4 runs out at national volume
(``audit_events`` within a year, docs/SCALING.md). SQLite's integers are already 64-bit and
``INTEGER PRIMARY KEY`` must stay the rowid alias: nothing to do there (the models say INTEGER
for SQLite, BIGINT for PostgreSQL: ``mailserver.store.models.ID``).

Written by hand: ``migrate --new`` compares the models with a SQLite head, where nothing
changes. Each table is rewritten once (one ALTER TABLE for all its columns), under an
ACCESS EXCLUSIVE lock: on a large database, run ``mssante migrate`` in a maintenance window.
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("id",),
    "key_generation": ("id",),
    "mailbox_keys": ("account_id",),
    "folders": ("id", "account_id"),
    "orphan_subscriptions": ("id", "account_id"),
    "conversations": ("id", "patient_account_id"),
    "conversation_parties": ("id", "conversation_id"),
    "messages": ("id", "account_id", "folder_id", "conversation_id"),
    "expunged_uids": ("folder_id",),
    "jobs": ("id", "account_id", "message_id"),
    "audit_events": ("id", "account_id"),
    "account_transitions": ("id", "account_id"),
    "account_archives": ("account_id",),
    "deletion_requests": ("account_id",),
    "prepared_exports": ("account_id",),
    "system_sent": ("account_id", "subject_id", "message_id"),
    "queue_keys": ("id",),
    "queue_messages": ("id",),
    "queue_recipients": ("id", "message_id"),
    "dossier_documents": ("id", "patient_account_id", "added_by_account_id",
                          "source_message_id"),
    "dossier_filings": ("id", "patient_account_id", "message_id"),
    "dossier_access_log": ("id", "patient_account_id", "actor_account_id", "document_id"),
    "dossier_access_log_heads": ("patient_account_id",),
    "dossier_consents": ("id", "patient_account_id"),
    "dossier_care_teams": ("id",),
    "dossier_care_team_members": ("team_id", "account_id"),
    "dossier_treating_doctors": ("patient_account_id", "doctor_account_id"),
    "dossier_api_tokens": ("id", "account_id"),
    "profile_entries": ("id", "patient_account_id", "added_by_account_id"),
    "webmail_sessions": ("account_id",),
    "webmail_reset_tokens": ("account_id",),
    "webmail_vitale": ("account_id",),
    "webmail_rendered": ("message_id", "account_id"),
    "webmail_email_changes": ("account_id",),
}
"""Frozen here (not read from the models): what this revision changes must not move later."""

BYTE_COUNTS: dict[str, tuple[str, ...]] = {"prepared_exports": ("size",)}
"""Byte counts that may pass 2 GiB: a patient's prepared export archive."""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, columns in ID_COLUMNS.items():
        changes = ", ".join(f'ALTER COLUMN "{c}" TYPE BIGINT' for c in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')
        for column in columns:
            # A serial's sequence is int4 too (its own type since PostgreSQL 10): without this
            # nextval would stop at 2^31 - 1 whatever the column's type. Not only ``id``: the
            # last release made a serial of two single-column keys naming an account
            # (``dossier_access_log_heads``, ``dossier_treating_doctors``).
            sequence = bind.exec_driver_sql(
                f"SELECT pg_get_serial_sequence('\"{table}\"', '{column}')").scalar()
            if sequence is not None:
                op.execute(f"ALTER SEQUENCE {sequence} AS BIGINT")
    for table, columns in BYTE_COUNTS.items():
        changes = ", ".join(f'ALTER COLUMN "{c}" TYPE BIGINT' for c in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore a backup to go back")
