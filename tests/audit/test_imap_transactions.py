"""IMAP changes write their audit row in the change's own transaction: the row is there when
the client reads the tagged OK (no flush, no wait), and a failure of the transaction (here a
real trigger refusing the audit row after it was inserted) leaves neither the row nor the
change. Reads (SELECT, EXAMINE, FETCH BODY[]) are batched: not there until the trail flushes."""

from __future__ import annotations

import asyncio
import imaplib
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from mailserver.app import Services
from mailserver.store.audit_queries import AuditQuery, AuditRecord, search
from tests.audit.helpers import rows
from tests.audit.test_cli_audit import run
from tests.conftest import DOMAIN, RPPS, add_pro
from tests.imap.conftest import Imap, imap, message  # noqa: F401 - the fixture

_REFUSE_SQLITE = ("CREATE TRIGGER audit_refuse AFTER INSERT ON audit_events "
                  "WHEN NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'refused'); END")
_REFUSE_PG = (
    "CREATE OR REPLACE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
    "CREATE TRIGGER audit_refuse AFTER INSERT ON audit_events FOR EACH ROW "
    "WHEN (NEW.action = '{action}') EXECUTE FUNCTION audit_refuse()")


async def _refuse(services: Services, action: str | None) -> None:
    """Make the database refuse (after inserting it) an audit row of ``action``; None: stop."""
    pg = services.db.engine.dialect.name == "postgresql"
    async with services.db.engine.begin() as conn:
        if action is None:
            await conn.execute(text("DROP TRIGGER audit_refuse" + (" ON audit_events"
                                                                   if pg else "")))
            return
        for stmt in (_REFUSE_PG if pg else (_REFUSE_SQLITE,)):
            await conn.execute(text(stmt.format(action=action)))


async def _now(services: Services, action: str) -> list[AuditRecord]:
    """The rows of ``action`` as they are in the database (the batch is not flushed)."""
    return [r async for r in search(services.db, AuditQuery(action=action))]


async def _deliver(services: Services, box: Imap, n: int) -> None:
    sender = await add_pro(services, "dr.durand", RPPS[1])
    party = await services.delivery.party_of(sender)
    for i in range(n):
        await services.delivery.deliver(party, sender.address, [box.user],
                                        message(i, msgid=f"<tx-{i}@{DOMAIN}>"),
                                        authenticated=sender)


async def _client(box: Imap) -> imaplib.IMAP4:
    def connect() -> imaplib.IMAP4:
        m = imaplib.IMAP4(box.host, box.port)
        m.starttls(box.tls)
        m.login(box.user, box.password)
        m.select("INBOX")
        return m

    return await asyncio.to_thread(connect)


async def _run(call: Callable[..., tuple[str, Any]], *args: Any) -> str:
    typ, _data = await asyncio.to_thread(call, *args)
    return typ


async def test_changes_recorded_in_their_transaction(imap: Imap,  # noqa: F811
                                                     services: Services) -> None:
    services.audit.linger = 3600  # batched rows wait for flush(): only in-transaction rows show
    await _deliver(services, imap, 3)
    m = await _client(imap)
    steps: list[tuple[str, Callable[..., tuple[str, Any]], tuple[Any, ...]]] = [
        ("flags-changed", m.uid, ("STORE", "1", "+FLAGS", "(\\Flagged)")),
        ("message-deleted", m.uid, ("STORE", "1", "+FLAGS", "(\\Deleted)")),
        ("message-expunged", m.expunge, ()),
        ("message-copied", m.uid, ("COPY", "2", "Trash")),
        ("message-moved", m.uid, ("MOVE", "3", "Archive")),
        ("message-appended", m.append, ("Drafts", "(\\Draft)", imaplib.Time2Internaldate(
            time.time()), message(9))),
    ]
    for action, call, args in steps:
        assert await _run(call, *args) == "OK", action
        [row] = await _now(services, action)
        assert row.protocol == "imap" and row.account_id == imap.account_id, action
        assert row.details["count"] == 1, (action, row.details)
    assert (await _now(services, "message-moved"))[0].details["to_folder"] == "Archive"
    assert (await _now(services, "message-appended"))[0].details["folder"] == "Drafts"
    # A change touching nothing records nothing: \Flagged is already there.
    assert await _run(m.uid, "STORE", "2", "+FLAGS", "(\\Flagged)") == "OK"
    assert await _run(m.uid, "STORE", "2", "+FLAGS", "(\\Flagged)") == "OK"
    assert len(await _now(services, "flags-changed")) == 2
    assert await _run(m.select, "Trash", True) == "OK"  # EXAMINE
    assert await _now(services, "mailbox-examined") == []  # a read: batched
    await asyncio.to_thread(m.logout)
    [examined] = await rows(services, imap.user, "mailbox-examined")
    assert examined.details == {"folder": "Trash", "folder_id": examined.details["folder_id"],
                                "count": 1}
    assert len(await rows(services, imap.user, "mailbox-selected")) == 1
    if services.config.store.database_url:
        return  # the command below reads the data dir's own (SQLite) database
    for kind in ("message-appended", "mailbox-examined"):
        out = run("audit", "--account", imap.user, "--action", kind,
                  data_dir=services.config.data_dir)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count(f" {kind} ") == 1, out.stdout
        assert out.stdout.splitlines()[-1] == "1 event(s)", out.stdout


async def test_refused_audit_row_rolls_back_the_change(imap: Imap,  # noqa: F811
                                                       services: Services) -> None:
    await _deliver(services, imap, 2)
    m = await _client(imap)
    inbox = await services.store.get_folder(imap.account_id, "INBOX")
    await _refuse(services, "message-moved")
    assert await _run(m.uid, "MOVE", "1", "Trash") == "NO"
    assert [x.uid for x in await services.store.list_messages(inbox.id)] == [1, 2]
    trash = await services.store.get_folder(imap.account_id, "Trash")
    assert await services.store.list_messages(trash.id) == []
    await _refuse(services, None)
    await _refuse(services, "flags-changed")
    assert await _run(m.uid, "STORE", "2", "+FLAGS", "(\\Flagged)") == "NO"
    assert all("\\Flagged" not in x.flags for x in await services.store.list_messages(inbox.id))
    await _refuse(services, None)
    assert await _now(services, "message-moved") == []
    assert await _now(services, "flags-changed") == []
    assert await _run(m.uid, "MOVE", "1", "Trash") == "OK"  # the same change, now recorded
    assert len(await _now(services, "message-moved")) == 1
    assert [x.uid for x in await services.store.list_messages(trash.id)] == [1]
    await asyncio.to_thread(m.logout)
