"""Finished jobs and outbound queue messages are deleted after ``[jobs] keep_done_days``
(controlled clock); pending, running, failed and active rows are kept; the job is in the job
table and scheduled once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from mailserver.app import Services, job_table
from mailserver.store.finished import JOB_PURGE_FINISHED, FinishedPurge, Purged
from mailserver.store.jobs import Jobs
from mailserver.store.models import Job
from mailserver.store.queue import QueueRecipient
from tests.conftest import DOMAIN
from tests.smtp.conftest import message


async def _job(services: Services, kind: str) -> int:
    async def op(s):  # type: ignore[no-untyped-def]
        Jobs.enqueue_in(s, kind)

    await services.db.write(op)
    (claimed,) = await services.jobs.claim([kind])
    return claimed.id


async def _states(services: Services) -> dict[str, str]:
    async with services.db.session() as s:
        return {k: st for k, st in (await s.execute(select(Job.kind, Job.state))).all()}


async def _queue(services: Services, *, finish: bool) -> int:
    queue = services.queue
    await queue.enqueue(f"dr.martin@{DOMAIN}", ["dr.x@ailleurs.example", "dr.y@ailleurs.example"],
                        message(f"dr.martin@{DOMAIN}", "dr.x@ailleurs.example"))
    (claimed,) = await queue.claim()
    if finish:  # one delivered, one bounced: the message is done
        rcpts = [r.id for r in claimed.entry.recipients]
        await queue.record(claimed.entry.id, {rcpts[0]: ("delivered", None, "mx.example"),
                                              rcpts[1]: ("failed", "550 5.1.1", "mx.example")})
        await queue.reschedule(claimed.entry.id, next_attempt=None, error=None)
    return claimed.entry.id


async def test_finished_rows_go_after_the_retention(services: Services) -> None:
    for kind in ("finished", "failed", "waiting"):
        job_id = await _job(services, kind)
        if kind == "finished":
            await services.jobs.done(job_id)
        elif kind == "failed":
            await services.jobs.retry(job_id, "boom", attempts=12)
    done = await _queue(services, finish=True)
    active = await _queue(services, finish=False)
    now = [datetime.now(UTC) + timedelta(days=6)]
    purge = FinishedPurge(services.db, keep_days=7, interval=3600, clock=lambda: now[0])

    assert await purge.run_once() == Purged(0, 0)  # finished 6 days ago: kept
    now[0] += timedelta(days=2)
    assert await purge.run_once() == Purged(1, 1)
    assert await purge.run_once() == Purged(0, 0)  # again (another process): nothing more
    assert await _states(services) == {"failed": "failed", "waiting": "running"}
    assert [e.id for e in await services.queue.list(include_done=True)] == [active]
    assert await services.queue.get(done) is None
    async with services.db.session() as s:
        owners = set((await s.execute(select(QueueRecipient.message_id))).scalars())
    assert owners == {active}  # the finished message's recipients went with it


async def test_purge_in_batches(services: Services) -> None:
    for _ in range(7):
        await services.jobs.done(await _job(services, "finished"))
    purge = FinishedPurge(services.db, keep_days=1, interval=3600, batch=3,
                          clock=lambda: datetime.now(UTC) + timedelta(days=2))
    assert await purge.run_once() == Purged(7, 0)
    async with services.db.session() as s:
        assert (await s.execute(select(func.count(Job.id)))).scalar_one() == 0


async def test_purge_job_in_the_job_table_and_scheduled_once(services: Services) -> None:
    assert JOB_PURGE_FINISHED in job_table(services)
    assert services.config.jobs.keep_done_days == 7
    purge = FinishedPurge(services.db, keep_days=7, interval=3600)
    await purge.schedule()
    await purge.schedule()
    assert await services.jobs.pending_count(JOB_PURGE_FINISHED) == 1
    assert await services.runner.run_due() >= 1  # runs, re-schedules itself
    assert await services.jobs.pending_count(JOB_PURGE_FINISHED) == 1
