"""A process's IMAP sessions share the UIDs of large folders (``KnownUids``): a SELECT brings
them up to date from the database's changes since, made by any process, instead of reading
every UID again; the view is then exactly the folder's."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import AsyncIterator

import pytest

from mailserver.config import Config
from mailserver.imap.server import start_imap
from mailserver.store.folder_uids import Known, KnownUids
from mailserver.tls import server_context
from tests.statements import recorded_statements

from .conftest import Imap, message, open_raw


@pytest.fixture
async def sharing(imap: Imap, config: Config) -> AsyncIterator[tuple[Imap, KnownUids]]:
    """A server whose sessions share the UIDs of every folder (no minimum size)."""
    known = KnownUids(min_size=1)
    backend = dataclasses.replace(imap.services.imap_backend(), known_uids=known)
    ctx = server_context(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    server = await start_imap(backend, "127.0.0.1", 0, ctx, implicit_tls=True)
    try:
        yield dataclasses.replace(imap, tls_port=server.sockets[0].getsockname()[1]), known
    finally:
        server.close()
        await server.wait_closed()


async def _select(imap: Imap) -> tuple[list[bytes], list[int]]:
    c = await open_raw(imap)
    try:
        res = await c.cmd("SELECT INBOX")
        found = (await c.cmd("UID SEARCH ALL"))[0]
        return res, [int(u) for u in found.split()[2:]]
    finally:
        await c.close()


def _uids_read(sql: list[str]) -> list[str]:
    """The statements that read all of a folder's UIDs (PostgreSQL's array, SQLite's pages)."""
    return [s for s in sql if "array((SELECT messages.uid" in s or "LIMIT" in s]


async def test_select_brings_the_shared_uids_up_to_date(
        sharing: tuple[Imap, KnownUids]) -> None:
    imap, known = sharing
    store = imap.services.store
    for n in range(1, 7):
        await store.append(imap.account_id, "INBOX", message(n))
    res, uids = await _select(imap)
    assert uids == [1, 2, 3, 4, 5, 6] and b"* 6 EXISTS\r\n" in res
    inbox = await store.get_folder(imap.account_id, "INBOX")
    assert (entry := known.get(inbox.id, inbox.uidvalidity)) is not None
    assert list(entry.uids) == uids

    # Unchanged: the shared UIDs are used as they are, no UID is read.
    with recorded_statements(imap.services.db) as sql:
        res, uids = await _select(imap)
    assert uids == [1, 2, 3, 4, 5, 6] and _uids_read(sql) == []

    # Changed meanwhile (as by another process): two new, two expunged, flags changed.
    await store.append(imap.account_id, "INBOX", message(7))
    await store.append(imap.account_id, "INBOX", message(8))
    await store.store_flags(inbox.id, [2, 5], ["\\Deleted"], "add")
    await store.store_flags(inbox.id, [1], ["\\Seen"], "add")
    await store.expunge(inbox.id)
    with recorded_statements(imap.services.db) as sql:
        res, uids = await _select(imap)
    assert uids == [1, 3, 4, 6, 7, 8]
    assert b"* 6 EXISTS\r\n" in res and b"* OK [UIDNEXT 9] predicted next UID\r\n" in res
    assert b"* OK [UNSEEN 2] first unseen\r\n" in res  # UID 3, the second message
    assert _uids_read(sql) == []
    assert list(known.get(inbox.id, inbox.uidvalidity).uids) == uids  # type: ignore[union-attr]


async def test_a_folder_far_behind_is_read_again(sharing: tuple[Imap, KnownUids]) -> None:
    imap, known = sharing
    store = imap.services.store
    for n in range(1, 4):
        await store.append(imap.account_id, "INBOX", message(n))
    inbox = await store.get_folder(imap.account_id, "INBOX")
    # An entry far behind the folder (and wrong, to show it is not used).
    known.put(inbox.id, Known(inbox.uidvalidity, inbox.highestmodseq - 1000, array("Q", [9])))
    with recorded_statements(imap.services.db) as sql:
        _, uids = await _select(imap)
    assert uids == [1, 2, 3] and len(_uids_read(sql)) == 1


def test_the_shared_uids_are_bounded() -> None:
    known = KnownUids(min_size=3, max_uids=10)
    known.put(1, Known(1, 1, array("Q", [1, 2])))  # too small to keep
    assert known.get(1, 1) is None
    known.put(2, Known(1, 1, array("Q", range(1, 5))))
    known.put(3, Known(1, 1, array("Q", range(1, 5))))
    assert known.get(2, 1) is not None  # now the most recently used
    known.put(4, Known(1, 1, array("Q", range(1, 5))))  # 12 > 10: the least recent goes
    assert known.get(3, 1) is None and known.get(2, 1) is not None
    assert known.get(4, 1) is not None and known.get(4, 2) is None  # another UIDVALIDITY
    known.put(5, Known(1, 1, array("Q", range(1, 12))))  # larger than the whole budget
    assert known.get(5, 1) is None
