"""ImapStore.delta / SelectedMailbox.poll: incremental change detection without a full reload."""

from __future__ import annotations

import random
from array import array

import pytest

from mailserver.app import Services
from mailserver.imap.mailbox import SelectedMailbox
from mailserver.store.imapmeta import ImapStore
from tests.conftest import add_pro
from tests.imap.conftest import message


async def _fill(services: Services, n: int) -> tuple[int, array[int]]:
    acct = await add_pro(services, "dr.martin")
    for i in range(1, n + 1):
        await services.store.append(acct.id, "INBOX", message(i))
    folder = await services.store.get_folder(acct.id, "INBOX")
    return folder.id, await ImapStore(services.store).uids(folder.id)


async def _expunge(services: Services, folder_id: int, uids: list[int]) -> None:
    await services.store.store_flags(folder_id, uids, ["\\Deleted"], "add")
    assert sorted(await services.store.expunge(folder_id, uids)) == sorted(uids)


@pytest.mark.parametrize("pattern", ["one", "run", "scattered", "every_other", "all", "none"])
async def test_delta_finds_exactly_the_vanished_uids(services: Services, pattern: str) -> None:
    folder_id, known = await _fill(services, 300)
    rnd = random.Random(pattern)  # noqa: S311 - reproducible test data
    gone = {"one": [known[137]], "run": list(known[40:90]),
            "scattered": rnd.sample(list(known), 25), "every_other": list(known[::2]),
            "all": list(known), "none": []}[pattern]
    if gone:
        await _expunge(services, folder_id, gone)
    store = ImapStore(services.store)
    info = await store.folder(folder_id)
    assert info is not None
    delta = await store.delta(folder_id, 0, known, find_gone=True)
    assert delta is not None
    assert sorted(delta.gone) == sorted(gone)
    assert list(delta.new) == []
    # Not asked for: nothing is looked up.
    quiet = await store.delta(folder_id, 0, known, find_gone=False)
    assert quiet is not None and quiet.gone == []


async def test_poll_reports_expunges_then_exists(services: Services) -> None:
    folder_id, known = await _fill(services, 120)
    info = await ImapStore(services.store).folder(folder_id)
    assert info is not None
    mb = SelectedMailbox(folder_id, 0, "INBOX", False, info.uidvalidity, array("Q", known),
                         info.highestmodseq)
    store = ImapStore(services.store)
    await mb.claim_recent(store, 0)  # as SELECT does
    assert len(mb.recent) == 120
    victims = [known[5], known[64], known[119]]
    await _expunge(services, folder_id, victims)
    store = ImapStore(services.store)
    # FETCH/STORE/SEARCH: no EXPUNGE allowed, the view keeps its numbers.
    lines = await mb.poll(store, allow_expunge=False, condstore=False)
    assert lines is not None and not any(b"EXPUNGE" in x for x in lines)
    assert mb.exists == 120
    lines = await mb.poll(store, allow_expunge=True, condstore=False)
    assert lines is not None
    # Highest sequence number first, each valid when sent (RFC 3501 7.4.1).
    assert [x for x in lines if b"EXPUNGE" in x] == [b"* 120 EXPUNGE\r\n", b"* 65 EXPUNGE\r\n",
                                                       b"* 6 EXPUNGE\r\n"]
    assert list(mb.uids) == [u for u in known if u not in victims]
    assert await mb.poll(store, allow_expunge=True, condstore=False) == []
    # New mail and an expunge together: EXPUNGE first, then EXISTS with the new count.
    await services.store.append(info.account_id, folder_id, message(500))
    await services.store.append(info.account_id, folder_id, message(501))
    await _expunge(services, folder_id, [mb.uids[0]])
    lines = await mb.poll(store, allow_expunge=True, condstore=False)
    assert lines is not None
    assert lines[:3] == [b"* 1 EXPUNGE\r\n", b"* 118 EXISTS\r\n", b"* 118 RECENT\r\n"]
    assert mb.exists == 118 and list(mb.uids) == list(await store.uids(folder_id))


@pytest.mark.parametrize("page", [7, 10, 5000])
async def test_uids_are_read_whole_across_pages(services: Services, page: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from mailserver.store import folder_uids
    folder_id, _ = await _fill(services, 30)
    await _expunge(services, folder_id, [4, 11, 12, 30])
    monkeypatch.setattr(folder_uids, "_UIDS_PAGE_SIZE", page)
    uids = await ImapStore(services.store).uids(folder_id)
    assert list(uids) == [u for u in range(1, 31) if u not in (4, 11, 12, 30)]
