"""Property: a session that only NOOPs keeps a message numbering consistent with the store,
whatever another session and SMTP-like appends do in between (RFC 3501 5.2, 7.4.1)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Imap, Raw, message, open_raw

OPS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(1, 3)),
    st.tuples(st.just("flag"), st.integers(1, 6)),
    st.tuples(st.just("delete"), st.integers(1, 6)),
    st.tuples(st.just("move"), st.integers(1, 6)),
    st.tuples(st.just("expunge"), st.just(0)),
), min_size=1, max_size=12)


def _apply(count: int, lines: list[bytes]) -> int:
    """Track the message count as the client must, from untagged responses."""
    for line in lines:
        if m := re.match(rb"\* (\d+) EXISTS", line):
            count = int(m.group(1))
        elif m := re.match(rb"\* (\d+) EXPUNGE", line):
            assert 1 <= int(m.group(1)) <= count, line
            count -= 1
        elif m := re.match(rb"\* (\d+) FETCH", line):
            assert 1 <= int(m.group(1)) <= count, line
    return count


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
async def test_watcher_view_stays_consistent(imap: Imap, ops: list[tuple[str, int]]) -> None:
    store = imap.services.store
    inbox = await store.get_folder(imap.account_id, "INBOX")
    for i in range(3):
        await store.append(imap.account_id, "INBOX", message(i))
    actor: Raw = await open_raw(imap)
    watcher: Raw = await open_raw(imap)
    count = _apply(0, await watcher.cmd("SELECT INBOX"))
    await actor.cmd("SELECT INBOX")
    for op, n in ops:
        current = [m.uid for m in await store.list_messages(inbox.id)]
        uid = current[n % len(current)] if current else 1
        if op == "append":
            for k in range(n):
                await store.append(imap.account_id, "INBOX", message(100 + k))
        elif op == "flag":
            await actor.cmd(f"UID STORE {uid} +FLAGS (\\Flagged)")
        elif op == "delete":
            await actor.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        elif op == "move":
            await actor.cmd(f"UID MOVE {uid} Archive")
        else:
            await actor.cmd("EXPUNGE")
        count = _apply(count, await watcher.cmd("NOOP"))
    uids = [m.uid for m in await store.list_messages(inbox.id)]
    assert count == len(uids)
    res = await watcher.cmd("FETCH 1:* (UID)") if uids else []
    assert [int(re.search(rb"UID (\d+)", line).group(1)) for line in res[:-1]] == uids
    for c in (actor, watcher):
        await c.close()
    # leave the store as found for the next example
    await store.store_flags(inbox.id, uids, ["\\Deleted"], "add")
    await store.expunge(inbox.id)
