"""A patient account's lifecycle: states, events and the one table of transitions (pure).

Rules (../shared/domain/README.md §8, issue 13)::

    pending ──activate──────────────▶ open          (first connection, or an agent)
    pending ──oppose [before opening]▶ opposed       (online, or the phone line's agent)
    pending ──auto_open [opening due]▶ open          (the scheduled job, at the deadline)
    opposed ──activate──────────────▶ open          (activation at any time)
    open    ──close─────────────────▶ closed
    closed  ──reactivate────────────▶ open          (the archived data comes back)
    closed  ──delete_archive────────▶ archive_deleted  (express request)
    archive_deleted ──reactivate────▶ open          (an empty space)
    closed | archive_deleted ──purge [10 years after closing]▶ purged

* The deadline is the last day to oppose: 6 weeks after the notification (letter or email).
  The account opens at 00:00 Europe/Paris of the day after, so opposing on the deadline day
  itself is still possible, and the opening job opens the account from that instant on.
* ``suspended`` (the operator's fraud suspension) is a status of today's accounts; its events
  are not part of this table yet.
* The state's value is the ``accounts.status`` column's value.

:func:`transition` is synchronous and pure: the directory reads the state and the facts,
calls it, and writes the new status with its history row in one transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["State", "Event", "Guard", "Refusal", "Facts", "Outcome", "Actor", "TABLE",
           "REFUSAL_TEXT", "PARIS", "OPPOSITION_WINDOW", "ARCHIVE_YEARS", "transition",
           "deadline_for", "opening_instant", "purge_instant", "paris_date",
           "state_of", "LOGIN_REFUSED"]

PARIS = ZoneInfo("Europe/Paris")
OPPOSITION_WINDOW = timedelta(weeks=6)
ARCHIVE_YEARS = 10


class State(enum.Enum):
    PENDING = "pending"
    OPEN = "open"
    OPPOSED = "opposed"
    CLOSED = "closed"
    ARCHIVE_DELETED = "archive_deleted"
    PURGED = "purged"
    SUSPENDED = "suspended"  # fraud suspension (no events in this table yet)


class Event(enum.Enum):
    ACTIVATE = "activate"
    OPPOSE = "oppose"
    AUTO_OPEN = "auto_open"
    CLOSE = "close"
    REACTIVATE = "reactivate"
    DELETE_ARCHIVE = "delete_archive"
    PURGE = "purge"


class Guard(enum.Enum):
    NONE = "none"
    BEFORE_OPENING = "before-opening"
    """Now is before the opening instant (00:00 Europe/Paris the day after the deadline)."""
    OPENING_DUE = "opening-due"
    """Now is at or after the opening instant."""
    RETENTION_OVER = "retention-over"
    """Ten years have passed since the account was closed."""


class Refusal(enum.Enum):
    NOT_FROM_STATE = "not-from-state"
    WINDOW_OVER = "window-over"
    NOT_DUE = "not-due"
    NO_DEADLINE = "no-deadline"
    RETENTION_NOT_OVER = "retention-not-over"


REFUSAL_TEXT: dict[Refusal, str] = {
    Refusal.NOT_FROM_STATE: "this event is not possible in this state",
    Refusal.WINDOW_OVER: "the opposition deadline has passed",
    Refusal.NOT_DUE: "the opposition deadline has not passed yet",
    Refusal.NO_DEADLINE: "the account has no opposition deadline",
    Refusal.RETENTION_NOT_OVER: "the archive's 10-year retention is not over",
}

S, E, G = State, Event, Guard
TABLE: dict[tuple[State, Event], tuple[State, Guard]] = {
    (S.PENDING, E.ACTIVATE): (S.OPEN, G.NONE),
    (S.PENDING, E.OPPOSE): (S.OPPOSED, G.BEFORE_OPENING),
    (S.PENDING, E.AUTO_OPEN): (S.OPEN, G.OPENING_DUE),
    (S.OPPOSED, E.ACTIVATE): (S.OPEN, G.NONE),
    (S.OPEN, E.CLOSE): (S.CLOSED, G.NONE),
    (S.CLOSED, E.REACTIVATE): (S.OPEN, G.NONE),
    (S.CLOSED, E.DELETE_ARCHIVE): (S.ARCHIVE_DELETED, G.NONE),
    (S.CLOSED, E.PURGE): (S.PURGED, G.RETENTION_OVER),
    (S.ARCHIVE_DELETED, E.REACTIVATE): (S.OPEN, G.NONE),
    (S.ARCHIVE_DELETED, E.PURGE): (S.PURGED, G.RETENTION_OVER),
}
"""state × event → (next state, guard). A pair not listed is refused."""
del S, E, G

LOGIN_REFUSED = frozenset({State.OPPOSED, State.CLOSED, State.ARCHIVE_DELETED, State.PURGED,
                           State.SUSPENDED})
"""States whose holder cannot log in even with the right password."""


@dataclass(frozen=True)
class Facts:
    now: datetime
    deadline: date | None = None
    """The last day to oppose (pending accounts)."""
    closed_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    state: State
    """The next state when allowed, else the unchanged state."""
    refusal: Refusal | None = None

    @property
    def text(self) -> str:
        return REFUSAL_TEXT[self.refusal] if self.refusal else "allowed"


@dataclass(frozen=True)
class Actor:
    """Who caused a transition: the patient, a phone line agent, or a system job."""

    kind: str  # "patient" | "agent" | "system"
    id: str = ""

    @classmethod
    def patient(cls) -> Actor:
        return cls("patient")

    @classmethod
    def agent(cls, agent_id: str) -> Actor:
        agent_id = agent_id.strip()
        if not agent_id or len(agent_id) > 60 or not agent_id.isprintable():
            raise ValueError("an agent id is 1 to 60 printable characters")
        return cls("agent", agent_id)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls("system", job)

    @classmethod
    def parse(cls, text: str) -> Actor:
        kind, _, ident = text.partition(":")
        return cls(kind, ident)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


def state_of(status: str) -> State:
    """The lifecycle state of an ``accounts.status`` value (ValueError if unknown)."""
    return State(status)


def paris_date(moment: datetime) -> date:
    """The calendar day in Europe/Paris at ``moment`` (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS).date()


def deadline_for(notified: date) -> date:
    """The last day to oppose for a patient notified on ``notified``: 6 weeks later."""
    return notified + OPPOSITION_WINDOW


def opening_instant(deadline: date) -> datetime:
    """When a pending account opens: 00:00 Europe/Paris of the day after ``deadline``."""
    return datetime.combine(deadline + timedelta(days=1), time(0), tzinfo=PARIS)


def purge_instant(closed_at: datetime) -> datetime:
    """Ten years after closing (a 29 February closes until 1 March)."""
    if closed_at.tzinfo is None:
        closed_at = closed_at.replace(tzinfo=UTC)
    try:
        return closed_at.replace(year=closed_at.year + ARCHIVE_YEARS)
    except ValueError:
        return closed_at.replace(year=closed_at.year + ARCHIVE_YEARS, month=3, day=1)


def _check(guard: Guard, facts: Facts) -> Refusal | None:
    now = facts.now if facts.now.tzinfo else facts.now.replace(tzinfo=UTC)
    if guard is Guard.NONE:
        return None
    if guard in (Guard.BEFORE_OPENING, Guard.OPENING_DUE):
        if facts.deadline is None:
            # No deadline recorded: an opposition is always possible, an automatic opening never.
            return None if guard is Guard.BEFORE_OPENING else Refusal.NO_DEADLINE
        due = now >= opening_instant(facts.deadline)
        if guard is Guard.BEFORE_OPENING:
            return Refusal.WINDOW_OVER if due else None
        return None if due else Refusal.NOT_DUE
    if facts.closed_at is None or now < purge_instant(facts.closed_at):
        return Refusal.RETENTION_NOT_OVER
    return None


def transition(state: State, event: Event, facts: Facts) -> Outcome:
    """The outcome of ``event`` on an account in ``state``, given ``facts``."""
    row = TABLE.get((state, event))
    if row is None:
        return Outcome(False, state, Refusal.NOT_FROM_STATE)
    target, guard = row
    refusal = _check(guard, facts)
    if refusal is not None:
        return Outcome(False, state, refusal)
    return Outcome(True, target)
