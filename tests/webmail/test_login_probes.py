"""The login step tells nothing about whether a name has an account (answers, lockout and
back-off are the same), and a locked one-time-code step is not fed new codes."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from mailserver.config import Config
from tests.webmail.conftest import LOGIN, PATIENT_PASSWORD, World

DELAY = 0.05


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    return dataclasses.replace(config, auth=dataclasses.replace(
        config.auth, fail_delay=DELAY, max_fail_delay=8 * DELAY))


async def _attempts(world: World, identifier: str, n: int) -> list[tuple[int, Any, float]]:
    out = []
    for i in range(n):
        started = time.monotonic()
        r = await world.client.post("/api/login", json={"identifier": identifier,
                                                         "password": f"mauvais-{i}"})
        out.append((r.status, await r.json(), time.monotonic() - started))
    return out


async def test_known_and_unknown_names_answered_alike(world: World) -> None:
    await world.first_connection()
    known = await _attempts(world, LOGIN, 7)
    unknown = await _attempts(world, "personne.inconnue", 7)
    assert [(s, body) for s, body, _ in known] == [(s, body) for s, body, _ in unknown]
    assert [s for s, _, _ in unknown] == [401] * 5 + [429] * 2
    # The back-off grows for unknown names too (DELAY, 2, 4, 8 × DELAY).
    for got in (known, unknown):
        assert got[3][2] >= 8 * DELAY * 0.9


async def test_no_new_code_while_the_code_step_is_locked(world: World) -> None:
    await world.first_connection()

    def codes_mailed() -> int:
        return len([m for m in world.outbox_messages() if "code" in str(m["Subject"]).lower()])

    locked = False
    for _ in range(4):
        r = await world.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
        assert r.status == 303, await r.text()
        wrong = "000000" if world.last_code() != "000000" else "111111"
        for _ in range(5):
            r = await world.post("/connexion/code", {"code": wrong})
            if r.status == 429:
                locked = True
            if r.status != 401:
                break
        if locked:
            break
    assert locked
    before = codes_mailed()
    for _ in range(3):
        r = await world.post("/connexion", {"identifier": LOGIN, "password": PATIENT_PASSWORD})
        assert r.status == 429
        assert "Trop de tentatives" in await r.text()
    assert codes_mailed() == before
