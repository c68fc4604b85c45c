"""The table of the patient's medical profile ("Profil médical"): one row per entry.

In clear (structure, like the document store's labels and dates): the patient's account id,
the rubric's slug, the account that added the entry, when it was added and last changed.
Sealed with the patient's data key (``data_enc``, AES-256-GCM, associated data
``profile-entry:<patient>:<rubric>:<id>`` so a row cannot be moved to another patient, rubric
or row): the entry's fields and who added it (name, kind).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.store.models import ID, Base

__all__ = ["ProfileEntry"]


class ProfileEntry(Base):
    """One entry of a rubric of a patient's medical profile."""

    __tablename__ = "profile_entries"
    __table_args__ = (Index("ix_profile_entries_patient_rubric", "patient_account_id",
                            "rubric"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    patient_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    rubric: Mapped[str] = mapped_column(String(32))
    added_by_account_id: Mapped[int | None] = mapped_column(ID)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data_enc: Mapped[bytes] = mapped_column(LargeBinary)
    """Sealed JSON: ``{"fields": {...}, "added_by": {"kind", "name"}}``."""
