"""The patient's medical profile: entries of the 9 rubrics, validated, sealed, listed.

Theory of operation:

* **Validation** is :func:`mailserver.profile.validate` (pure), run here on every add and change
  whoever calls (the webmail, ``/api/``, later ``/fhir``), against today's date in
  Europe/Paris. A change is a merge: the stored fields, then the changed ones (``None`` removes
  a field), validated as a whole. Two checks need the record: a directive's ``document_id`` must
  be a document of the patient's Documents space shown to them, and a patient has one
  personne de confiance.
* **Encryption at rest**: an entry's fields and who added it are one sealed JSON (see
  ``profile_models``); the rubric, the ids and the dates are in clear.
* **Who**: every entry keeps the account that added it, its kind (``patient``,
  ``professional``, ``application`` for an APP mailbox) and name ("Dr Claire Martin").
* **Access**: this store checks only that a patient acts on their own profile. Which
  professionals may read or add (consent, treating doctor) is decided by their front end
  (``/fhir``, `dossier_bridge.access.may_use_profile`) before calling it; the front end hands
  the access-log detail to :meth:`ProfileStore.add` (appended in the entry's transaction) and
  logs reads with :meth:`ProfileStore.log`.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dossier_bridge import audit
from dossier_bridge.errors import AccessDenied
from dossier_bridge.models import DossierDocument
from dossier_bridge.profile_models import ProfileEntry
from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound
from mailserver.lifecycle import paris_date
from mailserver.profile import EntryInvalid, Rubric, rubric, sort_key, validate
from mailserver.store.crypto import seal, unseal
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager

__all__ = ["ProfileStore", "ProfileEntryInfo", "PatientProfileView", "ONE_TRUSTED_PERSON",
           "PROFILE_READ", "PROFILE_ADD"]

PROFILE_READ = "profile-read"
PROFILE_ADD = "profile-add"
"""Access-log actions of a professional reading the profile, adding an entry."""

ONE_TRUSTED_PERSON = "Vous avez déjà une personne de confiance : modifiez-la ou supprimez-la " \
                     "avant d'en indiquer une autre."
_NO_DOCUMENT = "Ce document n'est pas dans votre espace Documents."


@dataclass(frozen=True, slots=True)
class ProfileEntryInfo:
    """One entry as read: its fields and who added it, when."""

    id: int
    rubric: str
    data: dict[str, Any]
    added_at: datetime
    updated_at: datetime
    added_by: str
    """The name of who added it ("Dr Claire Martin"); "patient" when the patient did."""
    added_by_kind: str
    """``patient``, ``professional`` or ``application``."""

    def as_json(self) -> dict[str, Any]:
        """The entry as ``GET /api/profile`` lists it."""
        return {"id": self.id, "added_by": self.added_by, "added_by_kind": self.added_by_kind,
                "added_at": self.added_at.isoformat(), **self.data}


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _aad(patient_id: int, slug: str, entry_id: int) -> bytes:
    return f"profile-entry:{patient_id}:{slug}:{entry_id}".encode()


def _author(account: AccountInfo) -> dict[str, str]:
    if account.is_patient:
        return {"kind": "patient", "name": "patient"}
    kind = "application" if account.bal_type == "APP" else "professional"
    return {"kind": kind, "name": account.name or account.address}


def _rubric(slug: str) -> Rubric:
    r = rubric(slug)
    if r is None:
        raise NotFound("no such rubric")
    return r


class ProfileStore:
    """The service API of the patients' medical profiles."""

    def __init__(self, db: Database, keys: KeyManager, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.keys = keys
        self.clock = clock

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _check_actor(actor: AccountInfo, patient_id: int) -> None:
        if actor.is_patient and actor.id != patient_id:
            raise AccessDenied("a patient changes only their own profile")

    def _info(self, key: bytes, row: ProfileEntry) -> ProfileEntryInfo:
        sealed = json.loads(unseal(key, row.data_enc,
                                   _aad(row.patient_account_id, row.rubric, row.id)))
        by = sealed.get("added_by", {})
        return ProfileEntryInfo(id=row.id, rubric=row.rubric, data=dict(sealed["fields"]),
                                added_at=_utc(row.added_at), updated_at=_utc(row.updated_at),
                                added_by=str(by.get("name", "")),
                                added_by_kind=str(by.get("kind", "")))

    @staticmethod
    def _seal(key: bytes, row: ProfileEntry, fields: dict[str, Any],
              added_by: dict[str, str]) -> None:
        blob = json.dumps({"fields": fields, "added_by": added_by}, sort_keys=True).encode()
        row.data_enc = seal(key, blob, _aad(row.patient_account_id, row.rubric, row.id))

    async def _rows(self, s: AsyncSession, patient_id: int, slug: str | None
                    ) -> builtins.list[ProfileEntry]:
        q = select(ProfileEntry).where(ProfileEntry.patient_account_id == patient_id)
        if slug is not None:
            q = q.where(ProfileEntry.rubric == slug)
        return list((await s.execute(q.order_by(ProfileEntry.id))).scalars().all())

    async def _record_checks(self, s: AsyncSession, key: bytes, patient_id: int, r: Rubric,
                             fields: dict[str, Any], entry_id: int | None) -> None:
        """The checks that need the record (see the module docstring)."""
        document_id = fields.get("document_id")
        if document_id is not None:
            found = (await s.execute(select(DossierDocument.id).where(
                DossierDocument.id == document_id,
                DossierDocument.patient_account_id == patient_id,
                DossierDocument.hidden_from_patient.is_(False)))).first()
            if found is None:
                raise EntryInvalid({"document_id": _NO_DOCUMENT},
                                   {"document_id": "Document de votre espace Documents"})
        if fields.get("kind") == "personne-confiance" and r.slug == "entourage-volontes":
            for row in await self._rows(s, patient_id, r.slug):
                if row.id != entry_id and \
                        self._info(key, row).data.get("kind") == "personne-confiance":
                    raise EntryInvalid({"kind": ONE_TRUSTED_PERSON}, {"kind": "Type"})

    # -- reading ------------------------------------------------------------------------------

    async def entries(self, patient_id: int, slug: str | None = None
                      ) -> builtins.list[ProfileEntryInfo]:
        """The profile's entries (of one rubric, or all), each rubric's newest first."""
        if slug is not None:
            _rubric(slug)
        async with self.db.session() as s:
            rows = await self._rows(s, patient_id, slug)
        if not rows:
            return []
        key = await self.keys.get(patient_id)
        infos = [self._info(key, row) for row in rows]
        infos.sort(key=lambda e: sort_key(_rubric(e.rubric), e.data, e.id), reverse=True)
        return infos

    async def get(self, patient_id: int, slug: str, entry_id: int) -> ProfileEntryInfo:
        """One entry. Raises NotFound when it is not an entry of this rubric of this profile."""
        _rubric(slug)
        async with self.db.session() as s:
            row = await s.get(ProfileEntry, entry_id)
        if row is None or row.patient_account_id != patient_id or row.rubric != slug:
            raise NotFound("no such profile entry")
        return self._info(await self.keys.get(patient_id), row)

    # -- changes ------------------------------------------------------------------------------

    async def add(self, actor: AccountInfo, patient_id: int, slug: str,
                  raw: Mapping[str, object], *, log: Mapping[str, Any] | None = None
                  ) -> ProfileEntryInfo:
        """Validate and add one entry; ``actor`` is who adds it. With ``log`` (the access-log
        detail), a ``profile-add`` entry goes in the patient's access log in the same
        transaction.

        Raises:
            NotFound: no such rubric.
            EntryInvalid: the input is refused (French messages by field).
            AccessDenied: a patient adding to another patient's profile.
        """
        self._check_actor(actor, patient_id)
        r = _rubric(slug)
        fields = validate(r, raw, paris_date(self.clock()))
        key = await self.keys.get(patient_id)
        author = _author(actor)
        now = self.clock()

        async def op(s: AsyncSession) -> ProfileEntryInfo:
            await self._record_checks(s, key, patient_id, r, fields, None)
            row = ProfileEntry(patient_account_id=patient_id, rubric=slug,
                               added_by_account_id=actor.id, added_at=now, updated_at=now,
                               data_enc=b"")
            s.add(row)
            await s.flush()  # the id is part of the associated data
            self._seal(key, row, fields, author)
            if log is not None:
                await audit.append_in(s, key, patient_id, action=PROFILE_ADD,
                                      actor_account_id=actor.id, document_id=None,
                                      detail={**log, "entry": row.id})
            return ProfileEntryInfo(row.id, slug, fields, _utc(now), _utc(now), author["name"],
                                    author["kind"])

        return await self.db.write(op)

    async def log(self, patient_id: int, action: str, actor_account_id: int,
                  detail: Mapping[str, Any]) -> None:
        """Append to the patient's access log (a professional's read: ``profile-read``)."""
        key = await self.keys.get(patient_id)

        async def op(s: AsyncSession) -> None:
            await audit.append_in(s, key, patient_id, action=action,
                                  actor_account_id=actor_account_id, document_id=None,
                                  detail=dict(detail))

        await self.db.write(op)

    async def update(self, actor: AccountInfo, patient_id: int, slug: str, entry_id: int,
                     changes: Mapping[str, object]) -> ProfileEntryInfo:
        """Change fields of an entry (``None`` removes one); the whole entry is validated
        again. Who added it and when are kept. Raises like :meth:`add`, and NotFound."""
        self._check_actor(actor, patient_id)
        r = _rubric(slug)
        today = paris_date(self.clock())
        key = await self.keys.get(patient_id)

        async def op(s: AsyncSession) -> ProfileEntryInfo:
            row = await s.get(ProfileEntry, entry_id)
            if row is None or row.patient_account_id != patient_id or row.rubric != slug:
                raise NotFound("no such profile entry")
            current = self._info(key, row)
            merged = {**current.data, **changes}
            fields = validate(r, {k: v for k, v in merged.items() if v is not None}, today)
            await self._record_checks(s, key, patient_id, r, fields, entry_id)
            self._seal(key, row, fields, {"kind": current.added_by_kind,
                                          "name": current.added_by})
            row.updated_at = self.clock()
            return ProfileEntryInfo(row.id, slug, fields, current.added_at,
                                    _utc(row.updated_at), current.added_by,
                                    current.added_by_kind)

        return await self.db.write(op)

    async def delete(self, actor: AccountInfo, patient_id: int, slug: str,
                     entry_id: int) -> None:
        """Delete an entry. Raises NotFound when it is not in this rubric of this profile."""
        self._check_actor(actor, patient_id)
        _rubric(slug)

        async def op(s: AsyncSession) -> None:
            result = await s.execute(delete(ProfileEntry).where(
                ProfileEntry.id == entry_id, ProfileEntry.patient_account_id == patient_id,
                ProfileEntry.rubric == slug))
            if getattr(result, "rowcount", 0) != 1:
                raise NotFound("no such profile entry")

        await self.db.write(op)


class PatientProfileView:
    """The webmail's ``PatientProfile`` seam: the logged-in patient's own profile only."""

    def __init__(self, profile: ProfileStore) -> None:
        self.profile = profile

    @staticmethod
    def _own(account: AccountInfo) -> int:
        if not account.is_patient:
            raise AccessDenied("the webmail shows a patient's own profile")
        return account.id

    async def entries(self, account: AccountInfo, rubric: str | None = None
                      ) -> list[ProfileEntryInfo]:
        return await self.profile.entries(self._own(account), rubric)

    async def get(self, account: AccountInfo, rubric: str, entry_id: int) -> ProfileEntryInfo:
        return await self.profile.get(self._own(account), rubric, entry_id)

    async def add(self, account: AccountInfo, rubric: str, raw: Mapping[str, object]
                  ) -> ProfileEntryInfo:
        return await self.profile.add(account, self._own(account), rubric, raw)

    async def update(self, account: AccountInfo, rubric: str, entry_id: int,
                     changes: Mapping[str, object]) -> ProfileEntryInfo:
        return await self.profile.update(account, self._own(account), rubric, entry_id,
                                         changes)

    async def delete(self, account: AccountInfo, rubric: str, entry_id: int) -> None:
        await self.profile.delete(account, self._own(account), rubric, entry_id)
