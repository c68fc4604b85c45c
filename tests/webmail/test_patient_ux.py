"""What a patient reads and does in the webmail (issue 9, item 26)."""

from __future__ import annotations

from datetime import timedelta

from tests.webmail.conftest import LOGIN, World
from webmail.flows import _too_many, duration_fr
from webmail.sessions import LIMITS, Limit, RateLimiter


async def test_lockout_text_says_the_configured_duration(world: World) -> None:
    await world.first_connection()
    limit = LIMITS["login-account"]
    for _ in range(limit.max_failures):
        await world.post("/connexion", {"identifier": LOGIN, "password": "mauvais"})
    r = await world.post("/connexion", {"identifier": LOGIN, "password": "mauvais"})
    text = await r.text()
    assert r.status == 429 and "Trop de tentatives" in text
    assert limit.lock == timedelta(minutes=15) and "15 minutes au plus" in text
    assert "une heure" not in text


def test_lockout_text_follows_the_limits() -> None:
    assert duration_fr(timedelta(minutes=15)) == "15 minutes"
    assert duration_fr(timedelta(hours=1)) == "une heure"
    assert duration_fr(timedelta(hours=2)) == "2 heures"
    assert duration_fr(timedelta(seconds=30)) == "une minute"
    limiter = RateLimiter(None, {  # type: ignore[arg-type]  # no database needed for the text
        "a": Limit(3, timedelta(hours=1), timedelta(minutes=5)),
        "b": Limit(3, timedelta(hours=1), timedelta(minutes=30))})
    assert "(30 minutes au plus)" in _too_many(limiter, "a", "b")
    assert "(5 minutes au plus)" in _too_many(limiter, "a")
