"""The bridge's record of handled messages (``dossier_filings``): its repository, store layer.

One row per (patient, message) says how the message was handled (status, reason, integration
error code) and where its receipt stands (``mdn``: none | pending | sent | undeliverable). What
was filed and whom to answer (document ids and names, the MDN target) is sealed with the
patient's data key (associated data ``dossier-filing:<patient>:<message>``): a shredded key
leaves a row without a readable result, never a readable one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dossier_bridge.models import DossierFiling
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager

__all__ = ["FilingRecord", "Filings"]


@dataclass(frozen=True, slots=True)
class FilingRecord:
    """One handled message, as recorded."""

    id: int
    patient_account_id: int
    message_id: int
    status: str
    reason: str | None
    error_code: int | None
    mdn: str
    result_enc: bytes | None

    @classmethod
    def of(cls, row: DossierFiling) -> FilingRecord:
        return cls(row.id, row.patient_account_id, row.message_id, row.status, row.reason,
                   row.error_code, row.mdn, row.result_enc)


class Filings:
    """Reads and writes ``dossier_filings`` rows (the only SQL of the filing)."""

    def __init__(self, db: Database, keys: KeyManager) -> None:
        self.db = db
        self.keys = keys

    @staticmethod
    async def _find(s: AsyncSession, patient_id: int, message_id: int) -> DossierFiling | None:
        return (await s.execute(select(DossierFiling).where(
            DossierFiling.patient_account_id == patient_id,
            DossierFiling.message_id == message_id))).scalars().first()

    async def get(self, patient_id: int, message_id: int) -> FilingRecord | None:
        """The record of ``message_id`` for ``patient_id``, if the message was handled."""
        async with self.db.session() as s:
            row = await self._find(s, patient_id, message_id)
        return FilingRecord.of(row) if row is not None else None

    async def record(self, patient_id: int, message_id: int, *, status: str,
                     reason: str | None, error_code: int | None, mdn: str,
                     result: dict[str, Any], at: datetime) -> FilingRecord:
        """Record how a message was handled, sealing ``result``; the first record wins.

        When a record already exists (the job ran twice), it is returned unchanged.
        """
        try:
            sealed: bytes | None = await self.keys.seal(
                patient_id, json.dumps(result).encode(), _aad(patient_id, message_id))
        except (NotFound, KeyDestroyed):
            sealed = None

        async def op(s: AsyncSession) -> FilingRecord:
            row = await self._find(s, patient_id, message_id)
            if row is None:
                row = DossierFiling(patient_account_id=patient_id, message_id=message_id,
                                    status=status, reason=reason, error_code=error_code,
                                    mdn=mdn, result_enc=sealed, created_at=at)
                s.add(row)
                await s.flush()
            return FilingRecord.of(row)

        return await self.db.write(op)

    async def set_mdn(self, filing_id: int, state: str) -> None:
        """Where the receipt of a handled message stands now."""
        async def op(s: AsyncSession) -> None:
            await s.execute(update(DossierFiling).where(DossierFiling.id == filing_id)
                            .values(mdn=state))

        await self.db.write(op)

    async def result(self, patient_id: int, message_id: int,
                     record: FilingRecord | None = None) -> dict[str, Any]:
        """The sealed result of a filing (documents, MDN target); {} when unknown."""
        record = record or await self.get(patient_id, message_id)
        if record is None or record.result_enc is None:
            return {}
        plain = await self.keys.unseal(patient_id, record.result_enc,
                                       _aad(patient_id, message_id))
        data = json.loads(plain)
        return data if isinstance(data, dict) else {}


def _aad(patient_id: int, message_id: int) -> bytes:
    return f"dossier-filing:{patient_id}:{message_id}".encode()
