"""A "sent once" claim that loses the race to another writer (its row inserted between this
claim's look and its INSERT) answers "already sent", not a storage error."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.app import Services
from mailserver.store.sent import RECEIPT, SentRecords
from tests.conftest import add_pro


async def test_a_claim_lost_to_another_writer_is_already_sent(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    a = await add_pro(services)
    records = SentRecords(services.db)
    assert await records.claim_once(RECEIPT, a.id, 7) is True
    assert await records.claim_notice(a.id, 1, timedelta(0)) == (True, None)

    async def not_seen_yet(_self: AsyncSession, *_args: Any, **_kwargs: Any) -> None:
        return None  # the other writer's row was not there when this claim looked

    monkeypatch.setattr(AsyncSession, "get", not_seen_yet)
    assert await records.claim_once(RECEIPT, a.id, 7) is False
    assert await records.claim_notice(a.id, 2, timedelta(0)) == (False, None)
