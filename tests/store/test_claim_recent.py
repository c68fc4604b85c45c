"""\\Recent claims (RFC 3501 2.3.2) made at the same time: each UID goes to exactly one claim."""

from __future__ import annotations

import asyncio

import pytest

from mailserver.app import Services
from mailserver.errors import NotFound
from mailserver.store.imapmeta import ImapStore
from tests.conftest import PG_URL, add_pro


async def test_concurrent_claims_share_out_each_uid_once(services: Services) -> None:
    acct = await add_pro(services)
    inbox = await services.store.get_folder(acct.id, "INBOX")
    stores = [ImapStore(services.store) for _ in range(8)]
    uptos = [3, 5, 4, 5, 2, 5, 1, 5]
    previous = await asyncio.gather(*(s.claim_recent(inbox.id, u)
                                      for s, u in zip(stores, uptos, strict=True)))
    claimed = [uid for p, u in zip(previous, uptos, strict=True) for uid in range(p + 1, u + 1)]
    assert sorted(claimed) == [1, 2, 3, 4, 5]
    assert (await services.store.get_folder(acct.id, "INBOX")).recent_uid == 5
    # Nothing left to claim below the mark.
    assert await stores[0].claim_recent(inbox.id, 4) >= 4


async def test_a_claim_on_a_gone_folder_claims_nothing(services: Services) -> None:
    store = ImapStore(services.store)
    if PG_URL:
        assert await store.claim_recent(10**9, 7) == 7
    else:
        with pytest.raises(NotFound):
            await store.claim_recent(10**9, 7)
