"""The account lifecycle, as a table over every state and event, and its time edges."""

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from mailserver.lifecycle import (
    PARIS,
    Actor,
    Event,
    Facts,
    Refusal,
    State,
    deadline_for,
    opening_instant,
    paris_date,
    purge_instant,
    transition,
)

DEADLINE = date(2025, 3, 14)
CLOSED_AT = datetime(2015, 6, 1, 10, 0, tzinfo=UTC)
# A moment where every time guard passes (after the opening, ten years after closing).
LATE = Facts(now=datetime(2026, 1, 1, tzinfo=UTC), deadline=DEADLINE, closed_at=CLOSED_AT)

P, OP, X, C, D, G, U = (State.PENDING, State.OPEN, State.OPPOSED, State.CLOSED,
                       State.ARCHIVE_DELETED, State.PURGED, State.SUSPENDED)
N = None  # refused: not possible from this state
EXPECTED: dict[State, dict[Event, State | None]] = {
    P: {Event.ACTIVATE: OP, Event.OPPOSE: N, Event.AUTO_OPEN: OP},  # oppose: window over (LATE)
    X: {Event.ACTIVATE: OP},
    OP: {Event.CLOSE: C},
    C: {Event.REACTIVATE: OP, Event.DELETE_ARCHIVE: D, Event.PURGE: G},
    D: {Event.REACTIVATE: OP, Event.PURGE: G},
    G: {},
    U: {},
}


@pytest.mark.parametrize("state,event", list(itertools.product(State, Event)),
                         ids=[f"{s.value}-{e.value}" for s, e in itertools.product(State, Event)])
def test_table(state: State, event: Event) -> None:
    out = transition(state, event, LATE)
    expected = EXPECTED[state].get(event)
    assert out.allowed is (expected is not None)
    assert out.state is (expected if expected is not None else state)
    if expected is None and not (state is P and event is Event.OPPOSE):
        assert out.refusal is Refusal.NOT_FROM_STATE


def paris(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


@pytest.mark.parametrize("now,oppose,auto_open", [
    (paris(2025, 2, 1), True, False),
    (paris(2025, 3, 14, 0, 0), True, False),       # the deadline day itself
    (paris(2025, 3, 14, 23, 59), True, False),     # its last minute
    (paris(2025, 3, 15, 0, 0), False, True),       # 00:00 Europe/Paris the day after
    (datetime(2025, 3, 14, 23, 0, tzinfo=UTC), False, True),  # = 00:00 in Paris (UTC+1)
    (datetime(2025, 3, 14, 22, 59, tzinfo=UTC), True, False),
    (paris(2025, 4, 1), False, True),
], ids=["window", "deadline-day", "deadline-last-minute", "day-after", "utc-midnight-paris",
        "utc-before", "later"])
def test_deadline_edges(now: datetime, oppose: bool, auto_open: bool) -> None:
    facts = Facts(now=now, deadline=DEADLINE)
    o = transition(P, Event.OPPOSE, facts)
    a = transition(P, Event.AUTO_OPEN, facts)
    assert o.allowed is oppose and a.allowed is auto_open
    assert o.refusal is (None if oppose else Refusal.WINDOW_OVER)
    assert a.refusal is (None if auto_open else Refusal.NOT_DUE)
    # Activation is possible at any time.
    assert transition(P, Event.ACTIVATE, facts).state is OP


def test_summer_time_opening() -> None:
    # In summer Paris is UTC+2: the opening is at 22:00 UTC the deadline day.
    assert opening_instant(date(2025, 7, 10)) == datetime(2025, 7, 10, 22, 0, tzinfo=UTC)
    assert opening_instant(DEADLINE) == datetime(2025, 3, 14, 23, 0, tzinfo=UTC)


def test_no_deadline() -> None:
    facts = Facts(now=LATE.now)
    assert transition(P, Event.AUTO_OPEN, facts).refusal is Refusal.NO_DEADLINE
    assert transition(P, Event.OPPOSE, facts).allowed


@pytest.mark.parametrize("now,allowed", [
    (datetime(2025, 6, 1, 9, 59, tzinfo=UTC), False),
    (datetime(2025, 6, 1, 10, 0, tzinfo=UTC), True),
])
def test_purge_after_ten_years(now: datetime, allowed: bool) -> None:
    for state in (C, D):
        out = transition(state, Event.PURGE, Facts(now=now, closed_at=CLOSED_AT))
        assert out.allowed is allowed
        assert out.refusal is (None if allowed else Refusal.RETENTION_NOT_OVER)
    assert transition(C, Event.PURGE, Facts(now=now)).refusal is Refusal.RETENTION_NOT_OVER


def test_dates() -> None:
    assert deadline_for(date(2025, 1, 31)) == date(2025, 3, 14)
    assert purge_instant(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(2034, 3, 1, tzinfo=UTC)
    assert paris_date(datetime(2025, 3, 14, 23, 30, tzinfo=UTC)) == date(2025, 3, 15)
    assert paris_date(datetime(2025, 3, 14, 22, 30)) == date(2025, 3, 14)  # naive = UTC
    assert opening_instant(DEADLINE) - opening_instant(DEADLINE - timedelta(days=1)) \
        == timedelta(days=1)


def test_actor() -> None:
    assert str(Actor.agent(" A12 ")) == "agent:A12"
    assert str(Actor.patient()) == "patient"
    assert Actor.parse("system:open-due") == Actor.system("open-due")
    with pytest.raises(ValueError):
        Actor.agent("")
