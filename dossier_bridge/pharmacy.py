"""The pharmacy exception of the send policy, from the patient's record.

A patient may write first to the ORG mailbox of a pharmacy that dispensed to them in the past 12
months (domain README section 3; "dispensed" = a dispensation document, class 43, filed in the
record, **our choice**). The bridge keeps, sealed in the document's metadata, the pharmacy's ORG
mailbox: the From address when the message came from an ORG mailbox of profession 21, else a
local open ORG pharmacy mailbox whose structure id is the document author's institution id.
The dispensation date is the document's creation time, else its filing date.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dossier_bridge.models import DossierDocument
from dossier_bridge.store import meta_aad
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.crypto import DecryptError, unseal
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager

__all__ = ["DossierPharmacies", "WINDOW"]

WINDOW = timedelta(days=365)


class DossierPharmacies:
    """`mailserver.delivery.PharmacySource` backed by the dispensations in the record."""

    def __init__(self, db: Database, keys: KeyManager, *, window: timedelta = WINDOW) -> None:
        self.db = db
        self.keys = keys
        self.window = window

    async def pharmacies_for(self, patient_account_id: int) -> frozenset[str]:
        """ORG pharmacy addresses the patient may write to first."""
        cutoff = datetime.now(UTC) - self.window
        async with self.db.session() as s:
            rows = (await s.execute(select(
                DossierDocument.storage_key, DossierDocument.meta_enc, DossierDocument.filed_at
            ).where(DossierDocument.patient_account_id == patient_account_id,
                    DossierDocument.dispensation.is_(True),
                    DossierDocument.filed_at >= cutoff))).all()
        if not rows:
            return frozenset()
        try:
            key = await self.keys.get(patient_account_id)
        except (NotFound, KeyDestroyed):
            return frozenset()
        out: set[str] = set()
        for storage_key, meta_enc, filed_at in rows:
            try:
                meta = json.loads(unseal(key, meta_enc, meta_aad(patient_account_id, storage_key)))
            except (DecryptError, ValueError):
                continue
            address = meta.get("pharmacy_address")
            if not isinstance(address, str) or not address:
                continue
            when = _when(meta.get("creation_time"), filed_at)
            if when >= cutoff:
                out.add(address)
        return frozenset(out)


def _when(raw: object, filed_at: datetime) -> datetime:
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
            return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
        except ValueError:
            pass
    return filed_at.replace(tzinfo=UTC) if filed_at.tzinfo is None else filed_at
