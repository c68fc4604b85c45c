"""The schema of the first release with migrations (revision 0001), frozen.

Generated once from the models at commit eb5efa4 (each table rendered by Alembic's autogenerate
renderer); never edit it: later changes are new revisions in ``versions/``. Revision 0001 creates
these tables; a database from before migrations is brought to them by ``legacy.py``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["baseline_metadata"]


def baseline_metadata() -> sa.MetaData:
    """A new MetaData holding the baseline tables (in dependency order)."""
    md = sa.MetaData()
    for define in _TABLES:
        define(md)
    return md


def _accounts(md: sa.MetaData) -> None:
    sa.Table('accounts', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('bal_type', sa.String(length=3), nullable=True),
        sa.Column('rpps', sa.String(length=11), nullable=True),
        sa.Column('ins', sa.String(length=15), nullable=True),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('name_enc', sa.LargeBinary(), nullable=True),
        sa.Column('profession', sa.String(length=8), nullable=True),
        sa.Column('structure_id', sa.String(length=32), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('login_id', sa.String(length=100), nullable=True),
        sa.Column('provisional_code_hash', sa.String(length=200), nullable=True),
        sa.Column('provisional_expires', sa.DateTime(timezone=True), nullable=True),
        sa.Column('contact_enc', sa.LargeBinary(), nullable=True),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('open_deadline', sa.Date(), nullable=True),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('inactive_notice_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('inactive_marked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('address'),
        sa.UniqueConstraint('ins'),
        sa.UniqueConstraint('login_id'),
        sa.Index('ix_accounts_open_deadline', 'open_deadline', unique=False),
        sa.Index('ix_accounts_rpps', 'rpps', unique=False),
    )


def _auth_attempts(md: sa.MetaData) -> None:
    sa.Table('auth_attempts', md,
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key_hash'),
        sa.Index('ix_auth_attempts_window_start', 'window_start', unique=False),
    )


def _directory_entries(md: sa.MetaData) -> None:
    sa.Table('directory_entries', md,
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('bal_type', sa.String(length=3), nullable=False),
        sa.Column('id_pp', sa.String(length=20), nullable=True),
        sa.Column('id_nat_pp', sa.String(length=21), nullable=True),
        sa.Column('structure_id', sa.String(length=32), nullable=True),
        sa.Column('last_name', sa.String(length=200), nullable=True),
        sa.Column('first_name', sa.String(length=200), nullable=True),
        sa.Column('profession', sa.String(length=8), nullable=True),
        sa.Column('profession_label', sa.String(length=200), nullable=True),
        sa.Column('specialty', sa.String(length=200), nullable=True),
        sa.Column('structure_name', sa.String(length=300), nullable=True),
        sa.Column('row_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('address'),
        sa.Index('ix_directory_entries_id_pp', 'id_pp', unique=False),
    )


def _dossier_access_log(md: sa.MetaData) -> None:
    sa.Table('dossier_access_log', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('actor_account_id', sa.Integer(), nullable=True),
        sa.Column('document_id', sa.Integer(), nullable=True),
        sa.Column('detail_enc', sa.LargeBinary(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('patient_account_id', 'seq'),
        sa.Index('ix_dossier_access_log_patient_account_id', 'patient_account_id', unique=False),
    )


def _dossier_access_log_heads(md: sa.MetaData) -> None:
    sa.Table('dossier_access_log_heads', md,
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        sa.Column('head_mac', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('patient_account_id')
    )


def _dossier_care_teams(md: sa.MetaData) -> None:
    sa.Table('dossier_care_teams', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )


def _dossier_consents(md: sa.MetaData) -> None:
    sa.Table('dossier_consents', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('ref', sa.String(length=64), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('patient_account_id', 'scope', 'ref'),
        sa.Index('ix_dossier_consents_patient_account_id', 'patient_account_id', unique=False),
    )


def _dossier_filings(md: sa.MetaData) -> None:
    sa.Table('dossier_filings', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('error_code', sa.Integer(), nullable=True),
        sa.Column('mdn', sa.String(length=16), nullable=False),
        sa.Column('result_enc', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('patient_account_id', 'message_id'),
        sa.Index('ix_dossier_filings_patient_account_id', 'patient_account_id', unique=False),
    )


def _dossier_treating_doctors(md: sa.MetaData) -> None:
    sa.Table('dossier_treating_doctors', md,
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('doctor_account_id', sa.Integer(), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('patient_account_id'),
        sa.Index('ix_dossier_treating_doctors_doctor_account_id', 'doctor_account_id', unique=False),  # noqa: E501
    )


def _key_generation(md: sa.MetaData) -> None:
    sa.Table('key_generation', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )


def _queue_keys(md: sa.MetaData) -> None:
    sa.Table('queue_keys', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('master_key_id', sa.String(length=16), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )


def _queue_messages(md: sa.MetaData) -> None:
    sa.Table('queue_messages', md,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('token', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('mail_from', sa.String(length=320), nullable=False),
        sa.Column('envid', sa.String(length=100), nullable=True),
        sa.Column('ret', sa.String(length=8), nullable=True),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('body_enc', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('delay_warned', sa.Boolean(), nullable=False),
        sa.Column('claimed_by', sa.String(length=64), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token'),
        sa.Index('ix_queue_due', 'state', 'next_attempt', unique=False),
    )


def _webmail_rate(md: sa.MetaData) -> None:
    sa.Table('webmail_rate', md,
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('key_hash')
    )


def _account_archives(md: sa.MetaData) -> None:
    sa.Table('account_archives', md,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('master_key_id', sa.String(length=16), nullable=False),
        sa.Column('archive_key_wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('data_key_wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deletion_requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('deletion_requested_by', sa.String(length=80), nullable=True),
        sa.Column('delete_after', sa.DateTime(timezone=True), nullable=True),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id'),
        sa.Index('ix_account_archives_delete_after', 'delete_after', unique=False),
    )


def _account_transitions(md: sa.MetaData) -> None:
    sa.Table('account_transitions', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('event', sa.String(length=20), nullable=False),
        sa.Column('from_state', sa.String(length=20), nullable=False),
        sa.Column('to_state', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_account_transitions_account_id', 'account_id', unique=False),
    )


def _conversations(md: sa.MetaData) -> None:
    sa.Table('conversations', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('started_by', sa.String(length=320), nullable=False),
        sa.Column('closed', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('message_count', sa.Integer(), nullable=True),
        sa.Column('unread_count', sa.Integer(), nullable=True),
        sa.Column('subject_enc', sa.LargeBinary(), nullable=True),
        sa.Column('correspondent_enc', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['patient_account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_conversations_patient_account_id', 'patient_account_id', unique=False),
        sa.Index('ix_conversations_patient_updated', 'patient_account_id', 'updated_at', unique=False),  # noqa: E501
    )


def _deletion_requests(md: sa.MetaData) -> None:
    sa.Table('deletion_requests', md,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('requested_by', sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id')
    )


def _dossier_api_tokens(md: sa.MetaData) -> None:
    sa.Table('dossier_api_tokens', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
        sa.Index('ix_dossier_api_tokens_account_id', 'account_id', unique=False),
    )


def _dossier_care_team_members(md: sa.MetaData) -> None:
    sa.Table('dossier_care_team_members', md,
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['dossier_care_teams.id'], ),
        sa.PrimaryKeyConstraint('team_id', 'account_id')
    )


def _dossier_documents(md: sa.MetaData) -> None:
    sa.Table('dossier_documents', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('content_key', sa.String(length=64), nullable=False),
        sa.Column('uid_key', sa.String(length=64), nullable=True),
        sa.Column('storage_key', sa.String(length=32), nullable=False),
        sa.Column('content_enc', sa.LargeBinary(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=8), nullable=False),
        sa.Column('needs_review', sa.Boolean(), nullable=False),
        sa.Column('masked', sa.Boolean(), nullable=False),
        sa.Column('hidden_from_patient', sa.Boolean(), nullable=False),
        sa.Column('added_by_patient', sa.Boolean(), nullable=False),
        sa.Column('added_by_account_id', sa.Integer(), nullable=True),
        sa.Column('source_message_id', sa.Integer(), nullable=True),
        sa.Column('dispensation', sa.Boolean(), nullable=False),
        sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('meta_enc', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['patient_account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('patient_account_id', 'content_key'),
        sa.UniqueConstraint('patient_account_id', 'uid_key'),
        sa.Index('ix_dossier_documents_patient_label', 'patient_account_id', 'label', unique=False),
    )


def _folders(md: sa.MetaData) -> None:
    sa.Table('folders', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=500), nullable=False),
        sa.Column('special_use', sa.String(length=16), nullable=True),
        sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
        sa.Column('uidnext', sa.BigInteger(), nullable=False),
        sa.Column('highestmodseq', sa.BigInteger(), nullable=False),
        sa.Column('subscribed', sa.Boolean(), nullable=False),
        sa.Column('message_count', sa.Integer(), nullable=False),
        sa.Column('unseen_count', sa.Integer(), nullable=False),
        sa.Column('recent_uid', sa.BigInteger(), nullable=True),
        sa.Column('keywords', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
        sa.Index('ix_folders_account_id', 'account_id', unique=False),
    )


def _jobs(md: sa.MetaData) -> None:
    sa.Table('jobs', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('payload_enc', sa.LargeBinary(), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_jobs_state_due', 'state', 'not_before', unique=False),
    )


def _mailbox_keys(md: sa.MetaData) -> None:
    sa.Table('mailbox_keys', md,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('master_key_id', sa.String(length=16), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=True),
        sa.Column('destroyed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id')
    )


def _orphan_subscriptions(md: sa.MetaData) -> None:
    sa.Table('orphan_subscriptions', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
        sa.Index('ix_orphan_subscriptions_account_id', 'account_id', unique=False),
    )


def _prepared_exports(md: sa.MetaData) -> None:
    sa.Table('prepared_exports', md,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('blob_key', sa.String(length=64), nullable=True),
        sa.Column('content_key_enc', sa.LargeBinary(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id'),
        sa.Index('ix_prepared_exports_expires_at', 'expires_at', unique=False),
    )


def _profile_entries(md: sa.MetaData) -> None:
    sa.Table('profile_entries', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_account_id', sa.Integer(), nullable=False),
        sa.Column('rubric', sa.String(length=32), nullable=False),
        sa.Column('added_by_account_id', sa.Integer(), nullable=True),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('data_enc', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['patient_account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_profile_entries_patient_rubric', 'patient_account_id', 'rubric', unique=False),
    )


def _queue_recipients(md: sa.MetaData) -> None:
    sa.Table('queue_recipients', md,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('domain', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('notify', sa.String(length=40), nullable=True),
        sa.Column('orcpt', sa.String(length=400), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('remote_mta', sa.String(length=255), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['queue_messages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_queue_recipients_domain', 'domain', unique=False),
        sa.Index('ix_queue_recipients_message_id', 'message_id', unique=False),
    )


def _system_sent(md: sa.MetaData) -> None:
    sa.Table('system_sent', md,
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('kind', 'account_id', 'subject_id')
    )


def _webmail_email_changes(md: sa.MetaData) -> None:
    sa.Table('webmail_email_changes', md,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('email_enc', sa.LargeBinary(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id')
    )


def _webmail_reset_tokens(md: sa.MetaData) -> None:
    sa.Table('webmail_reset_tokens', md,
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('token_hash'),
        sa.Index('ix_webmail_reset_tokens_account_id', 'account_id', unique=False),
    )


def _webmail_sessions(md: sa.MetaData) -> None:
    sa.Table('webmail_sessions', md,
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.String(length=8), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('otp_hash', sa.String(length=64), nullable=True),
        sa.Column('otp_expires', sa.DateTime(timezone=True), nullable=True),
        sa.Column('otp_attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('token_hash'),
        sa.Index('ix_webmail_sessions_account_id', 'account_id', unique=False),
    )


def _webmail_vitale(md: sa.MetaData) -> None:
    sa.Table('webmail_vitale', md,
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('serial_enc', sa.LargeBinary(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('account_id')
    )


def _conversation_parties(md: sa.MetaData) -> None:
    sa.Table('conversation_parties', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('professional', sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('conversation_id', 'address'),
        sa.Index('ix_conversation_parties_conversation_id', 'conversation_id', unique=False),
    )


def _messages(md: sa.MetaData) -> None:
    sa.Table('messages', md,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('folder_id', sa.Integer(), nullable=False),
        sa.Column('uid', sa.BigInteger(), nullable=False),
        sa.Column('modseq', sa.BigInteger(), nullable=False),
        sa.Column('flags', sa.Text(), nullable=False),
        sa.Column('internaldate', sa.DateTime(timezone=True), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('content_enc', sa.LargeBinary(), nullable=True),
        sa.Column('blob_key', sa.String(length=64), nullable=False),
        sa.Column('content_key_enc', sa.LargeBinary(), nullable=True),
        sa.Column('subject_enc', sa.LargeBinary(), nullable=True),
        sa.Column('from_enc', sa.LargeBinary(), nullable=True),
        sa.Column('meta_enc', sa.LargeBinary(), nullable=True),
        sa.Column('message_id_hash', sa.String(length=64), nullable=True),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('sent_date', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
        sa.ForeignKeyConstraint(['folder_id'], ['folders.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('folder_id', 'uid'),
        sa.Index('ix_messages_account_msgid', 'account_id', 'message_id_hash', unique=False),
        sa.Index('ix_messages_conversation_id', 'conversation_id', unique=False),
        sa.Index('ix_messages_folder_modseq', 'folder_id', 'modseq', unique=False),
    )


def _webmail_rendered(md: sa.MetaData) -> None:
    sa.Table('webmail_rendered', md,
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('images', sa.Boolean(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('message_id', 'images')
    )


_TABLES = (
    _accounts,
    _auth_attempts,
    _directory_entries,
    _dossier_access_log,
    _dossier_access_log_heads,
    _dossier_care_teams,
    _dossier_consents,
    _dossier_filings,
    _dossier_treating_doctors,
    _key_generation,
    _queue_keys,
    _queue_messages,
    _webmail_rate,
    _account_archives,
    _account_transitions,
    _conversations,
    _deletion_requests,
    _dossier_api_tokens,
    _dossier_care_team_members,
    _dossier_documents,
    _folders,
    _jobs,
    _mailbox_keys,
    _orphan_subscriptions,
    _prepared_exports,
    _profile_entries,
    _queue_recipients,
    _system_sent,
    _webmail_email_changes,
    _webmail_reset_tokens,
    _webmail_sessions,
    _webmail_vitale,
    _conversation_parties,
    _messages,
    _webmail_rendered,
)
