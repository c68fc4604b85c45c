"""A crash (SIGKILL) in the middle of closing or reactivating leaves the account either fully
open (its key in ``mailbox_keys``, its mail readable) or fully closed (its archive, no key):
a subprocess closes and reopens the space in a loop and is killed at random moments."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from mailserver.app import open_services
from mailserver.config import Config
from mailserver.lifecycle import Actor
from mailserver.store.archives import AccountArchive
from mailserver.store.models import MailboxKey
from tests.conftest import INS

LOOP = """
import asyncio, dataclasses, sys
from pathlib import Path
from mailserver.app import open_services
from mailserver.config import load
from mailserver.lifecycle import Actor

async def main() -> None:
    config = load(Path(sys.argv[1]) / "mssante.toml")
    if sys.argv[2]:
        config = dataclasses.replace(config, store=dataclasses.replace(
            config.store, database_url=sys.argv[2]))
    s = await open_services(config, fast_passwords=True)
    account = int(sys.argv[3])
    print("ready", flush=True)
    while True:
        state = (await s.directory.get(account)).status
        if state == "open":
            await s.closing.close(account, Actor.agent("loop"))
        else:
            await s.closing.reactivate(account, Actor.agent("loop"))

asyncio.run(main())
"""


async def _check(config: Config, account_id: int, raw: bytes) -> str:
    s = await open_services(config, fast_passwords=True)
    try:
        status = (await s.directory.get(account_id)).status
        async with s.db.session() as session:
            key = await session.get(MailboxKey, account_id)
            archive = await session.get(AccountArchive, account_id)
            archives = (await session.execute(select(AccountArchive))).scalars().all()
        assert len(archives) == (1 if status == "closed" else 0)
        if status == "open":
            assert key is not None and key.wrapped is not None and archive is None
            folder = await s.store.get_folder(account_id, "INBOX")
            (only,) = await s.store.list_messages(folder.id)
            assert await s.store.read_raw(only.id) == raw
        else:
            assert status == "closed" and key is None and archive is not None
        history = (await s.directory.lifecycle(account_id)).history
        assert (history[-1].to_state if history else "open") == status
        return f"{status}:{len(history)}"
    finally:
        await s.close()


def test_sigkill_while_closing_leaves_open_or_closed(config: Config, tmp_path: Path) -> None:
    async def setup() -> tuple[int, bytes]:
        s = await open_services(config, fast_passwords=True)
        try:
            info, _ = await s.directory.add_patient(ins=INS[0], name="Marie Dupont")
            result = await s.store.append(info.id, "INBOX", b"Subject: t\r\n\r\nbonjour\r\n")
            assert result
            folder = await s.store.get_folder(info.id, "INBOX")
            (only,) = await s.store.list_messages(folder.id)
            return info.id, await s.store.read_raw(only.id)
        finally:
            await s.close()

    account_id, raw = asyncio.run(setup())
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    seen: set[str] = set()
    rng = random.Random(13)  # noqa: S311 - timing jitter, not a secret
    for _ in range(8):
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", LOOP, str(config.data_dir), config.store.database_url,
             str(account_id)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        seen.add(asyncio.run(_check(config, account_id, raw)))
    # Finish open: the space and its message come back whatever the crash left.
    async def finish() -> None:
        s = await open_services(config, fast_passwords=True)
        try:
            if (await s.directory.get(account_id)).status == "closed":
                await s.closing.reactivate(account_id, Actor.agent("end"))
        finally:
            await s.close()

    asyncio.run(finish())
    final = asyncio.run(_check(config, account_id, raw))
    assert final.startswith("open:")
    # The loop got through many transitions, and was killed in both states.
    assert int(final.partition(":")[2]) > 16
    assert {state.partition(":")[0] for state in seen} == {"open", "closed"}, seen
