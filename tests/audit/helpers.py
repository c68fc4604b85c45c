"""Reading the audit table as the operator would, and the no-content check."""

from __future__ import annotations

from sqlalchemy import select

from mailserver.app import Services
from mailserver.store.audit import AuditRow
from mailserver.store.audit_queries import AuditQuery, AuditRecord, search


async def rows(services: Services, address: str | None = None,
               action: str | None = None) -> list[AuditRecord]:
    await services.audit.flush()
    return [r async for r in search(services.db, AuditQuery(address=address, action=action))]


async def assert_no_content(services: Services, *markers: str) -> None:
    """None of ``markers`` (a subject, a body text, a file name, a password) appears in any
    column of any audit row."""
    await services.audit.flush()
    async with services.db.session() as s:
        table = (await s.execute(select(AuditRow))).scalars().all()
    assert table, "the audit table is empty"
    for row in table:
        text = " ".join(str(getattr(row, c.name)) for c in AuditRow.__table__.columns)
        for marker in markers:
            assert marker not in text, (marker, text)
