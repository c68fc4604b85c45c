"""Tables of the patient's document store ("Documents", the shared medical record).

What is in clear and why (everything else is sealed with the patient's data key):

* routing/structure: ids, the patient's account id, the account that added a document, the source
  message row id, sizes, dates of filing, the label and the flags (masked, needs review, hidden
  from the patient, added by the patient, dispensation) - the same kind of facts the mail store
  keeps in clear (folders, flags, sizes, dates);
* idempotency keys are **keyed** hashes (HMAC-SHA-256 under a key derived from the patient's data
  key), never raw SHA-256 digests: a raw digest of a well-known document (a standard leaflet, a
  template certificate) would let anyone holding the database test whether a patient has it;
* the access log's hash chain is keyed the same way, so an attacker holding only the database
  cannot rewrite an entry and recompute the chain.

Sealed (``*_enc``): document bytes (inline or in the blob store), metadata (filename, title,
codes, author, dates, source message), access-log details, filing results.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.store.models import ID, Base

__all__ = [
    "DossierDocument",
    "DossierFiling",
    "DossierLogEntry",
    "DossierLogHead",
    "DossierConsent",
    "CareTeam",
    "CareTeamMember",
    "TreatingDoctor",
    "ApiToken",
    "LOG_HEADS_TABLE",
]

LOG_HEADS_TABLE = "dossier_access_log_heads"


class DossierDocument(Base):
    """One document of a patient's record."""

    __tablename__ = "dossier_documents"
    __table_args__ = (
        UniqueConstraint("patient_account_id", "content_key"),
        UniqueConstraint("patient_account_id", "uid_key"),
        Index("ix_dossier_documents_patient_label", "patient_account_id", "label"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    patient_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    content_key: Mapped[str] = mapped_column(String(64))
    """HMAC of the content's SHA-256 (idempotency)."""
    uid_key: Mapped[str | None] = mapped_column(String(64))
    """HMAC of the XDM/CDA uniqueId, when the document has one (idempotency)."""
    storage_key: Mapped[str] = mapped_column(String(32))
    """Random key: blob name and part of the associated data of every sealed field."""
    content_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed content when small; NULL when it lives in the blob store under ``storage_key``."""
    size: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(8))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    masked: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_from_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    added_by_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    added_by_account_id: Mapped[int | None] = mapped_column(ID)
    source_message_id: Mapped[int | None] = mapped_column(ID)
    dispensation: Mapped[bool] = mapped_column(Boolean, default=False)
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    meta_enc: Mapped[bytes] = mapped_column(LargeBinary)


class DossierFiling(Base):
    """Outcome of filing one delivered message (one row per patient copy)."""

    __tablename__ = "dossier_filings"
    __table_args__ = (UniqueConstraint("patient_account_id", "message_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    patient_account_id: Mapped[int] = mapped_column(ID, index=True)
    message_id: Mapped[int] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16))
    """filed | partial | not_filed | no_documents."""
    reason: Mapped[str | None] = mapped_column(String(40))
    """Why not (or not all) filed: a machine reason, never health data."""
    error_code: Mapped[int | None] = mapped_column(Integer)
    """Integration error 900-906 reported in the MDN, if any."""
    mdn: Mapped[str] = mapped_column(String(16), default="none")
    """none | sent | undeliverable."""
    result_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed JSON: ids and filenames of the documents this message filed (or found filed)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DossierLogEntry(Base):
    """Append-only, hash-chained access log of a patient's record."""

    __tablename__ = "dossier_access_log"
    __table_args__ = (UniqueConstraint("patient_account_id", "seq"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    patient_account_id: Mapped[int] = mapped_column(ID, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(16))
    actor_account_id: Mapped[int | None] = mapped_column(ID)
    document_id: Mapped[int | None] = mapped_column(ID)
    detail_enc: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class DossierLogHead(Base):
    """The head of a patient's access log, kept outside the chain and updated in the same
    transaction as each append: removing the last entries of the chain no longer matches it.
    ``head_mac`` is keyed like the chain, so an earlier head cannot be forged from the rows."""

    __tablename__ = LOG_HEADS_TABLE

    patient_account_id: Mapped[int] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))
    head_mac: Mapped[str] = mapped_column(String(64))


class DossierConsent(Base):
    """The patient's consent for a care team or an establishment (never per professional)."""

    __tablename__ = "dossier_consents"
    __table_args__ = (UniqueConstraint("patient_account_id", "scope", "ref"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    patient_account_id: Mapped[int] = mapped_column(ID, index=True)
    scope: Mapped[str] = mapped_column(String(16))
    """structure (ref = idNat_Struct) | team (ref = care team id)."""
    ref: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CareTeam(Base):
    """A care team (équipe de soins): a named group of professionals' accounts."""

    __tablename__ = "dossier_care_teams"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CareTeamMember(Base):
    """Membership of a professional's account in a care team."""

    __tablename__ = "dossier_care_team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("dossier_care_teams.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ID, primary_key=True)


class TreatingDoctor(Base):
    """The patient's médecin traitant (one per patient)."""

    __tablename__ = "dossier_treating_doctors"

    patient_account_id: Mapped[int] = mapped_column(ID, primary_key=True)
    doctor_account_id: Mapped[int] = mapped_column(ID, index=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A bearer token for professionals' software on ``/fhir/`` (only its SHA-256 is kept)."""

    __tablename__ = "dossier_api_tokens"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """Hex SHA-256 of the token (256 random bits: no salt or slow hash needed)."""
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
