"""The group commit's per-batch writes: audit rows of the ops of one batch go in one INSERT
before the COMMIT, and the rows of an op that fails go nowhere, while its neighbours' commit."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.app import Services
from mailserver.store.audit import Action, AuditEvent, Channel, Origin
from tests.audit.helpers import rows


def _event(address: str) -> AuditEvent:
    return AuditEvent(Action.LOGIN, Origin(Channel.SYSTEM), None, address)


async def test_a_failing_op_takes_its_audit_rows_with_it(services: Services) -> None:
    async def kept(s: AsyncSession) -> str:
        await services.audit.append_in(s, _event("kept@example.test"))
        return "kept"

    async def failing(s: AsyncSession) -> None:
        await services.audit.append_in(s, _event("dropped@example.test"))
        raise ValueError("refused after its audit row")

    batches = services.db.batches
    results = await asyncio.gather(services.db.write(kept), services.db.write(failing),
                                   services.db.write(kept), return_exceptions=True)
    assert services.db.batches == batches + 1  # one batch, one commit
    assert results[0] == results[2] == "kept"
    assert isinstance(results[1], ValueError)
    assert len(await rows(services, address="kept@example.test")) == 2
    assert await rows(services, address="dropped@example.test") == []


async def test_audit_rows_outside_a_group_commit_are_written_by_the_caller(
        services: Services) -> None:
    async with services.db.session() as s, s.begin():
        await services.audit.append_in(s, _event("direct@example.test"))
    assert len(await rows(services, address="direct@example.test")) == 1

