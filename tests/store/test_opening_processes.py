"""Two server processes run the automatic opening at the same moment on one database (SQLite,
or PostgreSQL with MSSANTE_TEST_DATABASE_URL): each due account is opened exactly once (one
history row, by one of the two), the accounts not yet due and the opposed one stay as they
are. Real OS processes, released together once both have their services open."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from mailserver.app import open_services
from mailserver.config import Config
from mailserver.lifecycle import Actor, Event

NOTIFIED = date(2025, 1, 31)  # deadline 2025-03-14, opening at 00:00 Paris on the 15th
LATE_NOTIFIED = date(2025, 2, 7)  # deadline 2025-03-21: not due at the run's time
DUE = 30

OPENER_SCRIPT = """
import asyncio, dataclasses, json, sys
from datetime import UTC, datetime
from pathlib import Path
from mailserver.app import open_services
from mailserver.config import load
from mailserver.directory.opening import OpeningJob

async def main() -> None:
    config = load(Path(sys.argv[1]) / "mssante.toml")
    if sys.argv[2]:
        config = dataclasses.replace(config, store=dataclasses.replace(
            config.store, database_url=sys.argv[2]))
    s = await open_services(config, fast_passwords=True)
    job = OpeningJob(s.directory, clock=lambda: datetime(2025, 3, 20, tzinfo=UTC), batch=4)
    print("ready", flush=True)
    sys.stdin.readline()
    opened = []
    for _ in range(20):  # on SQLite a pass stops when the other process holds the lock
        opened += await job.run_once()
        if not await s.directory.due_for_opening(as_of=job.clock()):
            break
    print(json.dumps(opened), flush=True)
    await s.close()

asyncio.run(main())
"""


def _ins(n: int) -> str:
    nir = f"2850175{n:03d}456"
    return f"{nir}{97 - int(nir) % 97:02d}"


async def _setup(config: Config) -> tuple[list[int], list[int]]:
    s = await open_services(config, fast_passwords=True)
    try:
        due, other = [], []
        for n in range(DUE + 2):
            info, _ = await s.directory.add_patient(
                ins=_ins(n), name="X", status="pending",
                notified_on=LATE_NOTIFIED if n == DUE else NOTIFIED)
            (other if n >= DUE else due).append(info.id)
        await s.directory.transition(other[1], Event.OPPOSE, Actor.patient(),
                                     now=datetime(2025, 2, 2, tzinfo=UTC))
        return due, other
    finally:
        await s.close()


async def _states(config: Config, ids: list[int]) -> list[tuple[str, list[str]]]:
    s = await open_services(config, fast_passwords=True)
    try:
        out = []
        for pid in ids:
            life = await s.directory.lifecycle(pid)
            out.append((life.state.value, [h.actor for h in life.history]))
        return out
    finally:
        await s.close()


def _run_two(config: Config) -> list[list[str]]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = [subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", OPENER_SCRIPT, str(config.data_dir), config.store.database_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:  # released together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), outs
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def test_two_processes_open_each_due_account_once(config: Config) -> None:
    due, (not_due, opposed) = asyncio.run(_setup(config))
    first, second = _run_two(config)
    print(f"opened by each process: {len(first)}, {len(second)}")
    assert not set(first) & set(second), (first, second)
    assert len(first) + len(second) == DUE
    states = asyncio.run(_states(config, due))
    assert states == [("open", ["system:open-due"])] * DUE
    (late, opp) = asyncio.run(_states(config, [not_due, opposed]))
    assert late == ("pending", []) and opp[0] == "opposed"
