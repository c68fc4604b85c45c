"""Small read helpers for the webmail."""

from __future__ import annotations

from sqlalchemy import select

from attachments.labels import Label
from dossier_bridge.filing import Filer
from dossier_bridge.models import DossierDocument
from mailserver.app import Services

__all__ = ["filings_for_message"]


async def filings_for_message(services: Services, patient_account_id: int, message_id: int
                              ) -> list[tuple[str, str]]:
    """(filename, label display name) of the documents of a message in the patient's record.

    Documents filed earlier from another message (same content) are included: they are in the
    record. Documents deleted since, or hidden from the patient, are left out. Empty when the
    message was not filed (yet).
    """
    filer = Filer(services)
    result = await filer.result(patient_account_id, message_id)
    entries = result.get("documents", [])
    ids = [int(e[0]) for e in entries]
    if not ids:
        return []
    async with services.db.session() as s:
        rows = (await s.execute(select(
            DossierDocument.id, DossierDocument.label, DossierDocument.hidden_from_patient
        ).where(DossierDocument.patient_account_id == patient_account_id,
                DossierDocument.id.in_(ids)))).all()
    labels = {i: Label(lbl).display_fr for i, lbl, hidden in rows if not hidden}
    return [(str(e[1]), labels[int(e[0])]) for e in entries if int(e[0]) in labels]
