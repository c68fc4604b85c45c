"""The audit trail's retention (controlled clock), its job, and the guard on details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailserver.app import Services, job_table
from mailserver.store.audit import (
    JOB_PURGE_AUDIT,
    Action,
    AuditEvent,
    AuditTrail,
    Channel,
    Origin,
    check_details,
)
from mailserver.store.audit_queries import AuditPurge, AuditQuery, search
from mailserver.store.jobs import Jobs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(n: int) -> AuditEvent:
    return AuditEvent(Action.LOGIN, Origin(Channel.IMAP, "192.0.2.1"), n, f"a{n}@x.test",
                      "ok", {"mechanism": "PLAIN"})


async def test_purge_after_retention_is_idempotent(services: Services) -> None:
    now = [T0]
    trail = AuditTrail(services.db, retention_days=183, clock=lambda: now[0])
    await trail.append(_event(1))
    now[0] = T0 + timedelta(days=100)
    await trail.append(_event(2))
    now[0] = T0 + timedelta(days=183, seconds=1)
    assert await trail.purge() == 1
    assert await trail.purge() == 0  # run again (a second process, a retry): nothing more
    left = [r.account_id async for r in search(services.db, AuditQuery())]
    assert left == [2]
    now[0] = T0 + timedelta(days=400)
    assert await trail.purge() == 1
    assert [r async for r in search(services.db, AuditQuery())] == []


async def test_purge_job_in_the_job_table_and_scheduled_once(services: Services) -> None:
    assert JOB_PURGE_AUDIT in job_table(services)
    purge = AuditPurge(services.audit, interval=86400)
    await purge.schedule()
    await purge.schedule()
    jobs = Jobs(services.db)
    assert await jobs.pending_count(JOB_PURGE_AUDIT) == 1
    await services.audit.append(_event(3))
    assert await services.runner.run_due() >= 1  # runs, keeps the recent row, re-schedules
    assert [r.account_id async for r in search(services.db, AuditQuery())] == [3]
    assert await jobs.pending_count(JOB_PURGE_AUDIT) == 1


def test_details_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="subject"):
        check_details({"subject": "Résultats"})
    with pytest.raises(ValueError, match="filename"):
        check_details({"size": 1, "filename": "x.pdf"})
    assert check_details({"size": 1, "to": ["a@b.fr"]}) == '{"size":1,"to":["a@b.fr"]}'
