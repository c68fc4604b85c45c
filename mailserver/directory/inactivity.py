"""Inactive professional mailboxes: a notice after 11 months without login, a mark for deletion
after 12 (``[inactivity]``); a scheduled job of the one job table (``JOB_INACTIVE``).

Theory of operation: the state is in the accounts' rows (last login, notice sent, marked), so a
pass is idempotent and safe in several processes; a login clears the notice and the mark. The
rule is :func:`step`, pure. A mailbox is never marked without a notice sent at least
``min_notice_days`` earlier, so the first pass on an old database only warns. Patients are
excluded (their accounts follow ``mailserver.lifecycle``). The mark is a flag with a deletion
date (mark + ``grace_days``) shown by ``mssante accounts inactive``; deleting stays a decision
of the operator. Each run schedules the next one (``interval_seconds``).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mailserver.config import InactivityConfig
from mailserver.store.inactivity import (
    InactiveAccount,
    inactive_professionals,
    set_marked,
    set_notice,
)
from mailserver.store.jobs import JobInfo, Jobs

__all__ = ["JOB_INACTIVE", "Step", "Planned", "step", "InactivitySweep", "Notify"]

log = logging.getLogger(__name__)

JOB_INACTIVE = "inactive_mailboxes"

Notify = Callable[[InactiveAccount, datetime], Awaitable[bool]]
"""Sends the notice (the account, the day it will be marked); True when delivered."""


class Step(enum.Enum):
    NONE = "none"
    NOTICE = "notice"
    MARK = "mark"


def step(a: InactiveAccount, now: datetime, cfg: InactivityConfig) -> Step:
    """What a pass at ``now`` does to ``a`` (pure; the rule as a table in its tests)."""
    idle = now - a.last_activity
    if a.marked_at is not None:
        return Step.NONE
    if a.notice_at is None:
        return Step.NOTICE if idle >= timedelta(days=cfg.notice_days) else Step.NONE
    if (idle >= timedelta(days=cfg.mark_days)
            and now - a.notice_at >= timedelta(days=cfg.min_notice_days)):
        return Step.MARK
    return Step.NONE


@dataclass(frozen=True)
class Planned:
    account: InactiveAccount
    step: Step
    mark_on: datetime
    """When the mailbox is (or will be at the earliest) marked."""
    delete_on: datetime
    """The deletion date shown: the mark + ``grace_days``."""


class InactivitySweep:
    def __init__(self, jobs: Jobs, cfg: InactivityConfig, notify: Notify) -> None:
        self.jobs = jobs
        self.cfg = cfg
        self.notify = notify

    async def preview(self, as_of: datetime) -> list[Planned]:
        """The professional mailboxes unused for ``notice_days`` at ``as_of``, with what a
        pass at that time would do."""
        rows = await inactive_professionals(
            self.jobs.db, as_of - timedelta(days=self.cfg.notice_days))
        return [self._plan(a, as_of) for a in rows]

    def _plan(self, a: InactiveAccount, now: datetime) -> Planned:
        mark_on = a.marked_at or max(
            a.last_activity + timedelta(days=self.cfg.mark_days),
            (a.notice_at or now) + timedelta(days=self.cfg.min_notice_days))
        return Planned(a, step(a, now, self.cfg), mark_on,
                       mark_on + timedelta(days=self.cfg.grace_days))

    async def run_once(self, now: datetime) -> tuple[int, int]:
        """One pass: notices sent, mailboxes marked."""
        noticed: list[int] = []
        marked: list[int] = []
        for plan in await self.preview(now):
            if plan.step is Step.NOTICE and await self.notify(plan.account, plan.mark_on):
                noticed.append(plan.account.id)
            elif plan.step is Step.MARK:
                marked.append(plan.account.id)
        await set_notice(self.jobs.db, noticed, now)
        await set_marked(self.jobs.db, marked, now)
        if noticed or marked:
            log.info("inactivity: notices=%d marked=%d", len(noticed), len(marked))
        return len(noticed), len(marked)

    async def handle_job(self, job: JobInfo) -> None:
        """Job ``inactive_mailboxes``: one pass, then the next run is scheduled."""
        if self.cfg.enabled:
            await self.run_once(datetime.now(UTC))
        await self.schedule(self.cfg.interval_seconds, running=1)

    async def schedule(self, delay: float = 0.0, *, running: int = 0) -> None:
        """Enqueue a run unless one is already waiting (``running``: this job itself)."""
        await self.jobs.schedule_once(JOB_INACTIVE, delay=delay, running=running)
