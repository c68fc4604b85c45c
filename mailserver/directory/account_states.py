"""A patient account's lifecycle as the directory applies it: transitions with their history
row, the automatic opening, provisional codes (the rules themselves are the pure table of
``mailserver.lifecycle``). Mixed into :class:`mailserver.directory.service.Directory`, whose
storage and password helpers it uses."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.directory.audit_events import transition_event
from mailserver.directory.passwords import Passwords
from mailserver.errors import AlreadyExists, NotFound, TransitionRefused, ValidationError
from mailserver.lifecycle import (
    Actor,
    Event,
    Facts,
    State,
    opening_instant,
    paris_date,
    transition,
)
from mailserver.store import lifecycle as lifecycle_rows
from mailserver.store.attempts import Attempts, attempt_key
from mailserver.store.audit import AuditTrail
from mailserver.store.db import Database
from mailserver.store.models import Account

__all__ = ["AccountStates", "AccountLifecycle", "PROVISIONAL_VALIDITY", "KEY_EVENTS",
           "CODE_STATES", "code_norm", "check_password", "new_provisional_code"]

T = TypeVar("T")

log = logging.getLogger("mailserver.directory.service")

PROVISIONAL_VALIDITY = timedelta(days=90)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
KEY_EVENTS = frozenset({Event.CLOSE, Event.REACTIVATE, Event.DELETE_ARCHIVE, Event.PURGE})
"""Events applied by ``mailserver.directory.closing`` (they move or destroy data keys)."""
CODE_STATES = (State.PENDING, State.OPPOSED, State.OPEN, State.CLOSED, State.ARCHIVE_DELETED)
"""States in which a provisional code may be issued (closed ones: to reactivate)."""


def new_provisional_code() -> str:
    """A letter's provisional code: 12 unambiguous characters in groups of 4."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def check_password(password: str) -> None:
    if len(password) < 8:
        raise ValidationError("password must have at least 8 characters")
    if len(password) > 1024:
        raise ValidationError("password is too long")


def code_norm(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (SQLite keeps no zone: everything is stored in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None \
        else moment


@dataclass(frozen=True)
class AccountLifecycle:
    """Where an account stands in its lifecycle, with every recorded transition."""

    state: State
    since: datetime
    deadline: date | None
    """Pending accounts: the last day to oppose."""
    opens_at: datetime | None
    """Pending accounts: when the opening job opens it (00:00 Europe/Paris after deadline)."""
    history: tuple[lifecycle_rows.TransitionRow, ...]



class AccountStates:
    """The lifecycle methods of the directory (see the module docstring)."""

    db: Database
    audit: AuditTrail
    clock: Callable[[], datetime]
    passwords: Passwords
    attempts: Attempts
    _auth_cache: dict[str, tuple[bytes, float, str]]

    async def _write(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        raise NotImplementedError

    def invalidate(self) -> None:
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------

    async def transition(self, account_id: int, event: Event, actor: Actor, reason: str = "",
                         *, now: datetime | None = None, reissue_code: bool = False
                         ) -> tuple[State, str | None]:
        """Apply a lifecycle ``event`` to a patient account: the status and its history row in
        one transaction. Returns the new state, and the new provisional code when
        ``reissue_code`` (the old one stops working).

        Raises:
            NotFound: no such patient account.
            TransitionRefused: the event is not possible in the account's state now.
        """
        if event in KEY_EVENTS:
            raise TransitionRefused(f"{event.value} moves the account's data key: use the "
                                    "account closing service", state="", event=event.value,
                                    refusal=None)
        at = now or self.clock()
        hashed = None
        code = new_provisional_code() if reissue_code else None
        if code is not None:
            hashed = await self.passwords.hash(code_norm(code))

        async def op(s: AsyncSession) -> State:
            a = await lifecycle_rows.lock_account(s, account_id, sqlite=self.db.is_sqlite)
            if a is None or a.kind != "patient":
                raise NotFound("no such patient account")
            values: dict[str, object] = {}
            if hashed is not None:
                values.update(provisional_code_hash=hashed,
                              provisional_expires=at + PROVISIONAL_VALIDITY)
            return await self.transition_in(s, a, event, actor, reason, at, values)

        return await self._write(op), code

    async def transition_in(self, s: AsyncSession, a: Account, event: Event, actor: Actor,
                             reason: str, at: datetime,
                             values: dict[str, object] | None = None, *,
                             as_of: datetime | None = None) -> State:
        """Apply ``event`` to ``a`` inside the caller's transaction; recorded at ``at``, the
        guards judged at ``as_of`` (default ``at``). The events that move data keys (closing,
        reactivating, deleting, purging) go through ``directory.closing``, which calls this
        in its own transaction."""
        at = _utc(at)
        state = State(a.status)
        outcome = transition(state, event, Facts(now=as_of or at, deadline=a.open_deadline,
                                                 closed_at=_aware(a.closed_at)))
        if not outcome.allowed:
            raise TransitionRefused(
                f"cannot {event.value} an account that is {state.value}: {outcome.text}",
                state=state.value, event=event.value, refusal=outcome.refusal)
        values = dict(values or {})
        if outcome.state is State.OPEN:
            values["opened_at"] = at
            values["open_deadline"] = None
        elif outcome.state is State.CLOSED:
            values["closed_at"] = at
        if outcome.state is State.OPPOSED:
            # No identifier or password is created; activating later takes a new code.
            values.setdefault("provisional_code_hash", None)
            values.setdefault("provisional_expires", None)
        if not await lifecycle_rows.record_transition(
                s, a.id, from_state=state.value, to_state=outcome.state.value,
                event=event.value, actor=str(actor), reason=reason, at=at, values=values):
            raise TransitionRefused("the account changed meanwhile; try again",
                                    state=state.value, event=event.value, refusal=None)
        await self.audit.append_in(s, transition_event(
            a, event=event.value, from_state=state.value, to_state=outcome.state.value,
            actor=str(actor)))
        log.info("lifecycle: %s -> %s event=%s actor=%s", state.value, outcome.state.value,
                 event.value, actor.kind)
        return outcome.state

    async def lifecycle(self, account_id: int) -> AccountLifecycle:
        """The account's state, since when, its deadline if pending, and its history."""
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
            if a is None:
                raise NotFound("no such account")
            rows = await lifecycle_rows.history(s, account_id)
        state = State(a.status)
        since = _aware(rows[-1].at) if rows else _aware(a.created_at)
        deadline = a.open_deadline if state is State.PENDING else None
        return AccountLifecycle(
            state=state, since=since or _utcnow(), deadline=deadline,
            opens_at=opening_instant(deadline) if deadline else None,
            history=tuple(dataclasses.replace(r, at=_aware(r.at) or r.at) for r in rows))

    async def due_for_opening(self, *, as_of: datetime | None = None) -> list[str]:
        """The addresses :meth:`open_due` would open at ``as_of`` (default now)."""
        last_deadline = paris_date(as_of or self.clock()) - timedelta(days=1)
        async with self.db.session() as s:
            due = await lifecycle_rows.due_for_opening(s, last_deadline=last_deadline,
                                                       limit=None, lock=False)
        return [a.address for a in due]

    async def open_due(self, *, as_of: datetime | None = None, limit: int = 200,
                       actor: Actor | None = None) -> list[str]:
        """Open up to ``limit`` pending accounts whose opening is due at ``as_of`` (default
        now); returns their addresses. Idempotent; concurrent runs (other processes) open
        each account once."""
        moment = as_of or self.clock()
        at = self.clock()
        who = actor or Actor.system("open-due")
        last_deadline = paris_date(moment) - timedelta(days=1)

        async def op(s: AsyncSession) -> list[str]:
            due = await lifecycle_rows.due_for_opening(
                s, last_deadline=last_deadline, limit=limit, lock=not self.db.is_sqlite)
            opened = []
            for a in due:
                reason = f"no answer by the deadline {a.open_deadline}"
                try:
                    async with s.begin_nested():
                        await self.transition_in(s, a, Event.AUTO_OPEN, who, reason, at,
                                                  as_of=moment)
                except TransitionRefused:
                    continue  # opened (or opposed) by someone else meanwhile
                opened.append(a.address)
            return opened

        return await self._write(op)

    # -- credentials ------------------------------------------------------------------------

    async def set_password(self, account_id: int, password: str) -> None:
        check_password(password)
        hashed = await self.passwords.hash(password)

        async def op(s: AsyncSession) -> str:
            a = await s.get(Account, account_id)
            if a is None:
                raise NotFound("no such account")
            a.password_hash = hashed
            a.failed_logins = 0
            a.locked_until = None
            return a.address

        address = await self._write(op)
        self._auth_cache.pop(address, None)
        await self.attempts.clear(attempt_key("name", f"account:{account_id}"))

    async def check_provisional_code(self, account_id: int, code: str) -> bool:
        """True if ``code`` is the account's unexpired provisional code (does not consume it)."""
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
        if a is None or not a.provisional_code_hash or a.provisional_expires is None:
            return False
        expires = a.provisional_expires
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires < self.clock():
            return False
        return await self.passwords.verify(a.provisional_code_hash, code_norm(code))

    async def consume_provisional_code(self, account_id: int, *, login_id: str,
                                       password: str) -> None:
        """Finish a first connection: the code stops working, credentials are set, and a
        pending or opposed account opens (activated by the patient), in one transaction."""
        check_password(password)
        hashed = await self.passwords.hash(password)
        now = self.clock()

        async def op(s: AsyncSession) -> None:
            a = await lifecycle_rows.lock_account(s, account_id, sqlite=self.db.is_sqlite)
            if a is None:
                raise NotFound("no such account")
            if (await s.execute(select(Account.id).where(
                    Account.login_id == login_id.lower(), Account.id != account_id))).first():
                raise AlreadyExists("this identifier is already taken")
            if a.status in (State.PENDING.value, State.OPPOSED.value):
                await self.transition_in(s, a, Event.ACTIVATE, Actor.patient(),
                                          "first connection", now)
                await s.refresh(a)
            a.provisional_code_hash = None
            a.provisional_expires = None
            a.login_id = login_id.lower()
            a.password_hash = hashed
            a.failed_logins = 0

        await self._write(op)

    async def new_provisional_code(self, account_id: int) -> str:
        """A new provisional code for a first connection (the old one stops working)."""
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
        if a is None:
            raise NotFound("no such account")
        if a.kind == "patient" and State(a.status) not in CODE_STATES:
            raise TransitionRefused(f"no provisional code for an account that is {a.status}",
                                    state=a.status, event="reissue_code", refusal=None)
        code = new_provisional_code()
        hashed = await self.passwords.hash(code_norm(code))

        async def op(s: AsyncSession) -> None:
            await s.execute(update(Account).where(Account.id == account_id).values(
                provisional_code_hash=hashed,
                provisional_expires=self.clock() + PROVISIONAL_VALIDITY))

        await self._write(op)
        return code

