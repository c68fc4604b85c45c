"""Closing a patient's space, its archive, its deletion on request, reactivation and purge.

Theory of operation (docs/ARCHITECTURE.md, "archive by key move"):

* **Closing** is one transaction: the lifecycle transition (open → closed, with its history
  row), the account's data key moved from ``mailbox_keys`` into ``account_archives`` (sealed
  under a fresh archive key, :mod:`mailserver.store.archives`), the key generation bumped (every
  process drops its cached keys), the webmail's sessions ended. No data is copied: messages,
  documents, profile entries and kept renderings stay where they are, unreadable by any normal
  path (the key is not where ``KeyManager`` looks, and every front end refuses a closed
  account). A crash leaves the account either open with its key, or closed with its archive.
* **Reactivating** (closed or archive deleted → open) moves the key back in one transaction:
  everything comes back byte for byte, or an empty space after a deletion.
* **Deletion on request** (before closing: a flag applied at closing; after: on the archive) is
  acknowledged at once by mail to the personal address, and carried out ``deletion_delay``
  later by :meth:`AccountClosing.erase_due` (the ``delete_archive`` job and the archive job of
  ``mssante serve``): the archived keys are replaced by a fresh empty data key (the patient's
  name and contact are re-sealed under it), every row of the space is deleted by the erasers
  the root wires in (mail store, webmail, dossier bridge), then closed → archive deleted; the
  blobs go after the commit.
* **Purge**, ten years after closing (:meth:`AccountClosing.purge_due`): the same deletion, the
  archive row and the identity dropped, → purged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.directory.service import Directory
from mailserver.errors import NotFound, TransitionRefused, ValidationError
from mailserver.lifecycle import PARIS, Actor, Event, State, purge_instant
from mailserver.store import lifecycle as lifecycle_rows
from mailserver.store.archives import Archives
from mailserver.store.blobs import BlobStore
from mailserver.store.crypto import seal, unseal
from mailserver.store.db import Database
from mailserver.store.jobs import Jobs
from mailserver.store.keys import KeyManager
from mailserver.store.models import Account

__all__ = ["AccountClosing", "DeletionStatus", "Eraser", "Acknowledge", "JOB_DELETE_ARCHIVE"]

log = logging.getLogger(__name__)

JOB_DELETE_ARCHIVE = "delete_archive"

Eraser = Callable[[AsyncSession, int], Awaitable[list[str]]]
"""Deletes an account's rows of one package in the caller's transaction; returns blob keys to
delete after the commit."""
Acknowledge = Callable[[str, str, str], Awaitable[None]]
"""Sends a mail to a personal address: (to, subject, body)."""

_ACK_SUBJECT = "Votre demande de suppression de données"


@dataclass(frozen=True)
class DeletionStatus:
    """Where an account's deletion request stands."""

    requested_at: datetime
    effective_at: datetime | None
    """When the deletion is (or was) carried out; None while the account is still open."""
    done: bool


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None \
        else moment


def _ack_body(effective: datetime | None) -> str:
    when = ("dès la fermeture de votre espace santé" if effective is None else
            f"le {effective.astimezone(PARIS):%d/%m/%Y}")
    return ("Bonjour,\n\nNous avons bien reçu votre demande de suppression des données de "
            "votre espace santé (messages, documents, profil médical, historique des accès).\n"
            f"Elles seront supprimées définitivement {when}.\n\nCette suppression ne peut pas "
            "être annulée : si vous rouvrez ensuite votre espace santé, il sera vide.\n\n"
            "Si vous n'avez rien demandé, appelez le 3422.\n")


class AccountClosing:
    """Closes, reactivates, deletes and purges patients' spaces (see the module docstring)."""

    def __init__(self, db: Database, directory: Directory, keys: KeyManager, blobs: BlobStore,
                 *, erasers: Sequence[Eraser], close_hooks: Sequence[Eraser] = (),
                 acknowledge: Acknowledge | None = None,
                 deletion_delay: timedelta = timedelta(0),
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.directory = directory
        self.keys = keys
        self.archives = Archives(keys.ring)
        self.blobs = blobs
        self.erasers = tuple(erasers)
        self.close_hooks = tuple(close_hooks)
        self.acknowledge = acknowledge
        self.deletion_delay = deletion_delay
        self.clock = clock

    async def _patient(self, s: AsyncSession, account_id: int) -> Account:
        a = await lifecycle_rows.lock_account(s, account_id, sqlite=self.db.is_sqlite)
        if a is None or a.kind != "patient":
            raise NotFound("no such patient account")
        return a

    async def _committed(self, account_id: int) -> None:
        """After a key move: this process forgets the key and its cached lookups."""
        self.keys.forget(account_id)
        self.directory.invalidate()

    # -- closing and reactivating ------------------------------------------------------------

    async def close(self, account_id: int, actor: Actor, reason: str = "", *,
                    delete_archive: bool = False, now: datetime | None = None) -> State:
        """Close an open space (see the module docstring); with ``delete_archive``, the
        archive is also to be deleted. Raises TransitionRefused when not open."""
        at = now or self.clock()
        email = await self._contact_email(account_id) if delete_archive else ""

        async def op(s: AsyncSession) -> datetime | None:
            a = await self._patient(s, account_id)
            if delete_archive and a.status == State.OPEN.value:
                await Archives.request_open_in(s, account_id, at=at, by=str(actor))
            state = await self.directory.transition_in(s, a, Event.CLOSE, actor, reason, at)
            await self.archives.archive_in(s, account_id, closed_at=at)
            for hook in self.close_hooks:
                await hook(s, account_id)
            info = await Archives.info(s, account_id)
            assert state is State.CLOSED and info is not None
            if info.deletion_requested_at is None:
                return None
            return await self._schedule_in(s, account_id, info.deletion_requested_at, actor, at)

        effective = await self.db.write(op)
        await self._committed(account_id)
        if delete_archive and email:
            await self._acknowledge(email, effective)
        return State.CLOSED

    async def reactivate(self, account_id: int, actor: Actor, reason: str = "", *,
                         now: datetime | None = None) -> State:
        """Reopen a closed space: its archived data comes back (or an empty space after a
        deletion). Raises TransitionRefused from another state."""
        at = now or self.clock()

        async def op(s: AsyncSession) -> State:
            a = await self._patient(s, account_id)
            state = await self.directory.transition_in(s, a, Event.REACTIVATE, actor, reason,
                                                       at)
            await self.archives.restore_in(s, account_id)
            return state

        state = await self.db.write(op)
        await self._committed(account_id)
        return state

    # -- deletion on request -----------------------------------------------------------------

    async def _schedule_in(self, s: AsyncSession, account_id: int, requested: datetime,
                           actor: Actor, at: datetime) -> datetime:
        """Set the archive's deletion date (request + delay, not before now) and its job."""
        due = max(_aware(requested) or at, at) + self.deletion_delay
        info = await Archives.request_closed_in(s, account_id, at=requested, by=str(actor),
                                                delete_after=due)
        effective = _aware(info.delete_after) or _aware(info.deleted_at) or due
        delay = max(0.0, (effective - _utcnow()).total_seconds())
        Jobs.enqueue_in(s, JOB_DELETE_ARCHIVE, account_id=account_id, delay=delay)
        return effective

    async def request_deletion(self, account_id: int, actor: Actor, *,
                               now: datetime | None = None) -> DeletionStatus:
        """Ask for the deletion of the space's archive: an open space's is deleted when it
        closes, a closed one's ``deletion_delay`` from now. Acknowledged by mail at once."""
        at = now or self.clock()
        email = await self._contact_email(account_id)

        async def op(s: AsyncSession) -> None:
            a = await self._patient(s, account_id)
            if a.status == State.OPEN.value:
                await Archives.request_open_in(s, account_id, at=at, by=str(actor))
            elif a.status == State.CLOSED.value:
                await self._schedule_in(s, account_id, at, actor, at)
            elif a.status != State.ARCHIVE_DELETED.value:
                raise ValidationError(f"no data to delete for an account that is {a.status}")

        await self.db.write(op)
        status = await self.deletion_status(account_id)
        assert status is not None
        if email and not status.done:
            await self._acknowledge(email, status.effective_at)
        return status

    async def deletion_status(self, account_id: int) -> DeletionStatus | None:
        """The account's deletion request, if any, and when it is (was) carried out."""
        async with self.db.session() as s:
            info = await Archives.info(s, account_id)
            request = await Archives.request(s, account_id)
        if info is not None and info.deletion_requested_at is not None:
            effective = _aware(info.deleted_at or info.delete_after)
            return DeletionStatus(_aware(info.deletion_requested_at) or effective or _utcnow(),
                                  effective, info.deleted_at is not None)
        if request is not None:
            return DeletionStatus(_aware(request.requested_at) or _utcnow(), None, False)
        return None

    async def _acknowledge(self, email: str, effective: datetime | None) -> None:
        if self.acknowledge is None:
            return
        try:
            await self.acknowledge(email, _ACK_SUBJECT, _ack_body(effective))
        except Exception:  # noqa: BLE001 - the request stands; the mail is a courtesy
            log.warning("lifecycle: deletion acknowledgement not sent")

    async def _contact_email(self, account_id: int) -> str:
        """The personal address, read with the data key where it is (space or archive)."""
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
            if a is None or a.contact_enc is None:
                return ""
            try:
                key = (await self.archives.data_key_in(s, account_id)
                       if a.status != State.OPEN.value else await self.keys.get(account_id, s))
                data = unseal(key, a.contact_enc, f"contact:{account_id}".encode())
            except Exception:  # noqa: BLE001 - no key, or unreadable: no acknowledgement
                return ""
        email = json.loads(data).get("email", "")
        return email if isinstance(email, str) else ""

    # -- carrying out deletions and purges ----------------------------------------------------

    async def erase_due(self, *, as_of: datetime | None = None, limit: int = 50) -> list[str]:
        """Delete the archives whose deletion is due at ``as_of``; their addresses."""
        moment = as_of or self.clock()
        async with self.db.session() as s:
            due = await Archives.due_deletions(s, moment, limit)
        done = []
        for account_id in due:
            try:
                done.append(await self._erase(account_id, Event.DELETE_ARCHIVE,
                                              Actor.system("delete-archive"), moment))
            except (TransitionRefused, NotFound):
                continue  # reactivated or handled by another process meanwhile
        return done

    async def purge_candidates(self, *, as_of: datetime | None = None, limit: int = 200
                               ) -> list[tuple[int, str]]:
        """(account id, address) of the archives whose 10 years are over at ``as_of``."""
        moment = as_of or self.clock()
        horizon = moment.replace(year=moment.year - 10, day=min(moment.day, 28))
        async with self.db.session() as s:
            rows = await Archives.closed_before(s, horizon + timedelta(days=4), limit)
            out = []
            for account_id, _closed in rows:
                a = await s.get(Account, account_id)
                if a is not None and a.closed_at is not None \
                        and purge_instant(a.closed_at) <= moment:
                    out.append((account_id, a.address))
        return out

    async def purge_due(self, *, as_of: datetime | None = None, limit: int = 200
                        ) -> list[str]:
        """Purge the archives closed ten years before ``as_of``; their addresses."""
        moment = as_of or self.clock()
        done = []
        for account_id, _address in await self.purge_candidates(as_of=moment, limit=limit):
            try:
                done.append(await self._erase(account_id, Event.PURGE,
                                              Actor.system("purge"), moment))
            except (TransitionRefused, NotFound):
                continue
        return done

    async def _erase(self, account_id: int, event: Event, actor: Actor, as_of: datetime
                     ) -> str:
        """Delete the space's rows and its archived keys, and apply ``event``."""
        at = self.clock()
        blob_keys: list[str] = []

        async def op(s: AsyncSession) -> str:
            a = await self._patient(s, account_id)
            values: dict[str, object] = {}
            if event is Event.DELETE_ARCHIVE:
                old = await self.archives.data_key_in(s, account_id)
                fresh = await self.archives.replace_in(s, account_id, deleted_at=at)
                values.update(_resealed(a, old, fresh))
            else:
                await Archives.drop_in(s, account_id)
                values.update(name_enc=None, contact_enc=None, login_id=None,
                              password_hash=None, provisional_code_hash=None,
                              provisional_expires=None)
            await self.directory.transition_in(s, a, event, actor, "", at, values,
                                               as_of=as_of)
            blob_keys.clear()
            for erase in self.erasers:
                blob_keys.extend(await erase(s, account_id))
            return a.address

        address = await self.db.write(op)
        await self._committed(account_id)
        for key in blob_keys:
            try:
                await self.blobs.delete(key)
            except OSError:
                log.warning("lifecycle: a blob of an erased space could not be deleted")
        log.info("lifecycle: space erased event=%s", event.value)
        return address


def _resealed(a: Account, old: bytes, fresh: bytes) -> dict[str, object]:
    """The account's name and contact sealed again under ``fresh`` (the identity stays)."""
    out: dict[str, object] = {}
    for column in ("name", "contact"):
        blob = getattr(a, f"{column}_enc")
        aad = f"{column}:{a.id}".encode()
        out[f"{column}_enc"] = None if blob is None else seal(fresh, unseal(old, blob, aad), aad)
    return out
