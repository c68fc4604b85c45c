"""Deleting a patient's record (their archive deleted on request, or purged): documents,
filings, the access log and its head, consents, the treating doctor, the medical profile.

Runs in the caller's transaction (wired by the composition root into the account closing
service); returns the blob keys of the documents stored as blobs, to delete after the commit
(a document's blob belongs to that document only).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dossier_bridge.models import (
    DossierConsent,
    DossierDocument,
    DossierFiling,
    DossierLogEntry,
    DossierLogHead,
    TreatingDoctor,
)
from dossier_bridge.profile_models import ProfileEntry

__all__ = ["erase_patient_in"]


async def erase_patient_in(s: AsyncSession, patient_id: int) -> list[str]:
    """Delete every row of the patient's record; the blob keys to delete after commit."""
    blobs = list((await s.execute(select(DossierDocument.storage_key).where(
        DossierDocument.patient_account_id == patient_id,
        DossierDocument.content_enc.is_(None)))).scalars().all())
    for model in (DossierDocument, DossierFiling, DossierLogEntry, DossierLogHead,
                  DossierConsent, TreatingDoctor, ProfileEntry):
        await s.execute(delete(model).where(model.patient_account_id == patient_id))
    return blobs
