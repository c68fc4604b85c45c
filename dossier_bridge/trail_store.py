"""The operator's audit rows of the patient's document store, written next to its
patient-facing access log (same transaction): a document filed or read, a consent or treating
doctor changed. The access log stays the patient's (titles, names, hash chain); the operator's
row holds only the action, the label, the document id and who acted."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.audit import Action, AuditEvent, AuditTrail, Channel, Origin
from mailserver.store.models import Account

__all__ = ["TrailMirror"]

_ACTIONS = {"file": Action.DOCUMENT_FILED, "read": Action.DOCUMENT_READ,
            "consent_grant": Action.CONSENT_CHANGED, "consent_revoke": Action.CONSENT_CHANGED,
            "treating_doctor": Action.CONSENT_CHANGED}


class TrailMirror:
    """Writes the audit row of an access-log entry (see the module docstring)."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def entry_in(self, s: AsyncSession, patient_id: int, action: str,
                       actor_account_id: int | None, document_id: int | None,
                       detail: dict[str, Any]) -> None:
        kind = _ACTIONS.get(action)
        if kind is None:
            return
        patient = await s.get(Account, patient_id)
        actor = None
        if actor_account_id is not None and actor_account_id != patient_id:
            by = await s.get(Account, actor_account_id)
            actor = by.address if by is not None else f"account:{actor_account_id}"
        details: dict[str, object] = {"kind": action}
        for key in ("label", "scope"):
            if isinstance(detail.get(key), str):
                details[key] = detail[key]
        if document_id is not None:
            details["documents"] = [document_id]
        channel = Channel.FHIR if kind is Action.DOCUMENT_READ else Channel.SYSTEM
        await self.trail.append_in(s, AuditEvent(
            kind, Origin(channel, actor=actor), patient_id,
            patient.address if patient is not None else None, "ok", details))
