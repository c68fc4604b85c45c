"""Consent, care teams and the treating doctor: who a professional is to a patient's record.

Consent is given by the patient for a **care team** (a named group of professionals' accounts)
or an **establishment** (an idNat_Struct, matched against the professional's account
``structure_id``), never for one professional (domain README section 6). The treating doctor
(médecin traitant) needs no consent and sees everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dossier_bridge import audit
from dossier_bridge.access import Viewer, ViewerRole
from dossier_bridge.models import CareTeam, CareTeamMember, DossierConsent, TreatingDoctor
from dossier_bridge.trail_store import TrailMirror
from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound, ValidationError
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager

__all__ = ["Consents", "ConsentInfo", "SCOPES"]

SCOPES = ("structure", "team")


@dataclass(frozen=True, slots=True)
class ConsentInfo:
    """One consent of a patient."""

    scope: str
    ref: str
    granted_at: datetime
    id: int = 0


class Consents:
    """Consent records, care teams and treating doctors."""

    def __init__(self, db: Database, keys: KeyManager, trail: TrailMirror | None = None
                 ) -> None:
        self.db = db
        self.keys = keys
        self.trail = trail

    async def viewer(self, account: AccountInfo, patient_id: int) -> Viewer:
        """Resolve how ``account`` relates to the record of ``patient_id``."""
        if account.is_patient:
            role = ViewerRole.PATIENT if account.id == patient_id else ViewerRole.OTHER
            return Viewer(role, account.id)
        async with self.db.session() as s:
            doctor = await s.get(TreatingDoctor, patient_id)
            if doctor is not None and doctor.doctor_account_id == account.id:
                return Viewer(ViewerRole.TREATING_DOCTOR, account.id, account.profession)
            rows = (await s.execute(select(DossierConsent.scope, DossierConsent.ref).where(
                DossierConsent.patient_account_id == patient_id))).all()
            structures = {ref for scope, ref in rows if scope == "structure"}
            teams = {int(ref) for scope, ref in rows if scope == "team"}
            consented = bool(account.structure_id and account.structure_id in structures)
            if not consented and teams:
                member = (await s.execute(select(CareTeamMember.team_id).where(
                    CareTeamMember.account_id == account.id,
                    CareTeamMember.team_id.in_(teams)).limit(1))).first()
                consented = member is not None
        role = ViewerRole.CONSENTED if consented else ViewerRole.NO_CONSENT
        return Viewer(role, account.id, account.profession)

    async def _log(self, s: AsyncSession, patient_id: int, action: str, actor: int | None,
                   detail: dict[str, str]) -> None:
        key = await self.keys.get(patient_id, s)
        await audit.append_in(s, key, patient_id, action=action, actor_account_id=actor,
                              document_id=None, detail=detail)
        if self.trail is not None:
            await self.trail.entry_in(s, patient_id, action, actor, None, dict(detail))

    async def grant(self, patient_id: int, scope: str, ref: str, *,
                    actor_account_id: int | None = None) -> None:
        """Record the patient's consent for a care team (ref = team id) or an establishment
        (ref = idNat_Struct). Granting twice is harmless."""
        if scope not in SCOPES:
            raise ValidationError("consent scope must be 'structure' or 'team'")
        ref = ref.strip()
        if not ref:
            raise ValidationError("consent reference is empty")
        if scope == "team":
            async with self.db.session() as s:
                if not ref.isdigit() or await s.get(CareTeam, int(ref)) is None:
                    raise NotFound("no such care team")

        async def op(s: AsyncSession) -> None:
            exists = (await s.execute(select(DossierConsent.id).where(
                DossierConsent.patient_account_id == patient_id, DossierConsent.scope == scope,
                DossierConsent.ref == ref))).first()
            if exists:
                return
            s.add(DossierConsent(patient_account_id=patient_id, scope=scope, ref=ref,
                                 granted_at=datetime.now(UTC)))
            await self._log(s, patient_id, "consent_grant", actor_account_id,
                            {"scope": scope, "ref": ref})

        await self.db.write(op)

    async def revoke(self, patient_id: int, scope: str, ref: str, *,
                     actor_account_id: int | None = None) -> bool:
        """Withdraw a consent; returns False when there was none."""

        async def op(s: AsyncSession) -> bool:
            res = await s.execute(delete(DossierConsent).where(
                DossierConsent.patient_account_id == patient_id, DossierConsent.scope == scope,
                DossierConsent.ref == ref.strip()))
            if not res.rowcount:  # type: ignore[attr-defined]
                return False
            await self._log(s, patient_id, "consent_revoke", actor_account_id,
                            {"scope": scope, "ref": ref.strip()})
            return True

        return await self.db.write(op)

    async def list(self, patient_id: int) -> list[ConsentInfo]:
        """The patient's consents, oldest first."""
        async with self.db.session() as s:
            rows = (await s.execute(select(DossierConsent).where(
                DossierConsent.patient_account_id == patient_id).order_by(DossierConsent.id)
            )).scalars().all()
        return [ConsentInfo(r.scope, r.ref, r.granted_at, r.id) for r in rows]

    async def revoke_id(self, patient_id: int, consent_id: int, *,
                        actor_account_id: int | None = None) -> bool:
        """Withdraw one of ``patient_id``'s consents by its id; False when it is not theirs."""
        async with self.db.session() as s:
            row = await s.get(DossierConsent, consent_id)
        if row is None or row.patient_account_id != patient_id:
            return False
        return await self.revoke(patient_id, row.scope, row.ref,
                                 actor_account_id=actor_account_id)

    async def team_names(self, team_ids: Sequence[int]) -> dict[int, str]:
        """Names of the given care teams (missing ones left out)."""
        if not team_ids:
            return {}
        async with self.db.session() as s:
            rows = (await s.execute(select(CareTeam.id, CareTeam.name).where(
                CareTeam.id.in_(list(team_ids))))).all()
        return {i: n for i, n in rows}

    async def treating_doctor_since(self, patient_id: int) -> tuple[int, datetime] | None:
        """(doctor's account id, since when) of the patient's treating doctor, if declared."""
        async with self.db.session() as s:
            row = await s.get(TreatingDoctor, patient_id)
        return (row.doctor_account_id, row.since) if row else None

    async def create_team(self, name: str, members: Sequence[int] = ()) -> int:
        """Create a care team with the given professionals' account ids; returns its id."""
        if not name.strip():
            raise ValidationError("care team name is empty")

        async def op(s: AsyncSession) -> int:
            team = CareTeam(name=name.strip(), created_at=datetime.now(UTC))
            s.add(team)
            await s.flush()
            for account_id in dict.fromkeys(members):
                s.add(CareTeamMember(team_id=team.id, account_id=account_id))
            return team.id

        return await self.db.write(op)

    async def add_member(self, team_id: int, account_id: int) -> None:
        """Add a professional's account to a care team (idempotent)."""

        async def op(s: AsyncSession) -> None:
            if await s.get(CareTeam, team_id) is None:
                raise NotFound("no such care team")
            if await s.get(CareTeamMember, (team_id, account_id)) is None:
                s.add(CareTeamMember(team_id=team_id, account_id=account_id))

        await self.db.write(op)

    async def remove_member(self, team_id: int, account_id: int) -> None:
        """Remove a professional from a care team."""

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(CareTeamMember).where(
                CareTeamMember.team_id == team_id, CareTeamMember.account_id == account_id))

        await self.db.write(op)

    async def set_treating_doctor(self, patient_id: int, doctor: AccountInfo | None, *,
                                  actor_account_id: int | None = None) -> None:
        """Declare (or clear, with None) the patient's treating doctor, a physician (code 10)."""
        if doctor is not None and (doctor.is_patient or doctor.profession != "10"):
            raise ValidationError("the treating doctor must be a physician (profession 10)")

        async def op(s: AsyncSession) -> None:
            await s.execute(delete(TreatingDoctor).where(
                TreatingDoctor.patient_account_id == patient_id))
            if doctor is not None:
                s.add(TreatingDoctor(patient_account_id=patient_id, doctor_account_id=doctor.id,
                                     since=datetime.now(UTC)))
            await self._log(s, patient_id, "treating_doctor", actor_account_id,
                            {"doctor": doctor.address if doctor else "",
                             "name": (doctor.name or "") if doctor else ""})

        await self.db.write(op)

    async def treating_doctor(self, patient_id: int) -> int | None:
        """Account id of the patient's treating doctor, if declared."""
        async with self.db.session() as s:
            row = await s.get(TreatingDoctor, patient_id)
        return row.doctor_account_id if row else None
