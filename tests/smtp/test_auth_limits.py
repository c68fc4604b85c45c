"""Login limits over real submission sessions (STARTTLS, AUTH PLAIN): attempts are counted
when they start, whatever the concurrency; known accounts are answered like unknown names until
the password is proven; the login cache is renewed on use and checked once for many
connections."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.directory.service import Directory
from mailserver.errors import AuthError, StoreError
from mailserver.runtime import Runtime
from tests.conftest import INS, PASSWORD, PATIENT_DOMAIN, add_patient, add_pro
from tests.smtp.conftest import submission

DELAY = 0.3
T = TypeVar("T")


async def in_threads(calls: list[Callable[[], T]]) -> list[T]:
    """Run blocking clients at once, one thread each (the default pool has only a few)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(await asyncio.gather(*(loop.run_in_executor(pool, f) for f in calls)))


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    # A real back-off: failures stay in flight for a while, as in production. The per-address
    # connection limit (50) is lifted: the lockout must hold on its own, whatever the concurrency.
    return dataclasses.replace(
        config, auth=dataclasses.replace(config.auth, fail_delay=DELAY, max_fail_delay=DELAY),
        smtp=dataclasses.replace(config.smtp, max_connections_per_address=0))


def _auth(runtime: Runtime, tls: ssl.SSLContext, user: str, password: str,
          ready: threading.Barrier | None = None) -> tuple[int, bytes, float]:
    """One STARTTLS session, one AUTH PLAIN; returns (code, text, seconds taken by AUTH)."""
    with submission(runtime, tls) as c:
        c.ehlo()
        c.user, c.password = user, password
        if ready is not None:
            ready.wait()
        started = time.monotonic()
        try:
            c.auth("PLAIN", c.auth_plain)
            return 235, b"", time.monotonic() - started
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code, exc.smtp_error, time.monotonic() - started


async def test_parallel_guesses_cannot_pass_the_lockout(runtime: Runtime, services: Services,
                                                        client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    ready = threading.Barrier(99)

    def wrong(i: int) -> int:
        return _auth(runtime, client_tls, a.address, f"wrong-password-{i}", ready)[0]

    def right() -> int:
        with submission(runtime, client_tls) as c:
            c.ehlo()
            c.user, c.password = a.address, PASSWORD
            time.sleep(0.5)  # the 99 wrong guesses are in flight (answered after DELAY)
            try:
                c.auth("PLAIN", c.auth_plain)
                return 235
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code

    codes = await in_threads([*(lambda i=i: wrong(i) for i in range(99)), right])
    assert 235 not in codes
    threshold = services.config.auth.lockout_threshold
    assert codes.count(535) <= threshold  # at most that many guesses were evaluated
    assert set(codes) <= {535, 454}


async def test_patient_probe_without_password_looks_unknown(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    patient = await add_patient(services)
    await services.directory.set_password(patient.id, PASSWORD)

    def probe(user: str, password: str) -> tuple[int, bytes, float]:
        return _auth(runtime, client_tls, user, password)

    ghost = f"{INS[1]}@{PATIENT_DOMAIN}"  # no such patient (yet)
    for user in (patient.address, ghost):
        answers = [await asyncio.to_thread(probe, user, f"guess-{i}") for i in range(6)]
        # Same text as an unknown name, after the back-off, and counted: locked at the 6th.
        for code, text, took in answers[:5]:
            assert (code, text) == (535, b"5.7.8 Authentication credentials invalid")
            assert took >= DELAY * 0.9
        assert answers[5][0] == 454
    # Only the right password tells a patient to use the webmail.
    other = await add_patient(services, ins=INS[1])
    await services.directory.set_password(other.id, PASSWORD)
    code, text, _ = await asyncio.to_thread(probe, other.address, PASSWORD)
    assert code == 535 and b"webmail" in text


async def test_cache_renewed_on_use_and_checked_once(runtime: Runtime, services: Services,
                                                     client_tls: ssl.SSLContext) -> None:
    a = await add_pro(services)
    d = services.directory
    calls = 0
    verify = d.passwords.verify

    async def counting(stored: str, password: str) -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)  # a slow hash: every connection arrives while it runs
        return await verify(stored, password)

    d.passwords.verify = counting  # type: ignore[method-assign]
    ready = threading.Barrier(20)
    codes = await in_threads([lambda: _auth(runtime, client_tls, a.address, PASSWORD, ready)
                              for _ in range(20)])
    assert [c[0] for c in codes] == [235] * 20
    assert calls == 1  # one Argon2 check for twenty connections at once
    # A hit renews the entry: used again near its end, it is still there after it.
    digest, _expires, stored = d._auth_cache[a.address]  # noqa: SLF001
    d._auth_cache[a.address] = (digest, time.monotonic() + 0.5, stored)  # noqa: SLF001
    assert (await asyncio.to_thread(_auth, runtime, client_tls, a.address, PASSWORD))[0] == 235
    await asyncio.sleep(0.6)
    assert (await asyncio.to_thread(_auth, runtime, client_tls, a.address, PASSWORD))[0] == 235
    assert calls == 1


async def test_attempts_are_shared_between_processes(config: Config, services: Services) -> None:
    # A second set of services on the same database stands for a second server process.
    other = await open_services(config, fast_passwords=True)
    try:
        a = await add_pro(services)

        async def guess(directory: Directory, i: int) -> str:
            try:
                await directory.authenticate(a.address, f"wrong-{i}", client="192.0.2.7")
            except AuthError as exc:
                return "locked" if exc.locked else "failed"
            except StoreError:  # SQLite: two writers at once, one is told "locked" (not let in)
                return "store busy"
            return "ok"

        results = await asyncio.gather(*(guess((services, other)[i % 2].directory, i)
                                         for i in range(40)))
        assert results.count("failed") <= config.auth.lockout_threshold
        with pytest.raises(AuthError) as refused:
            await other.directory.authenticate(a.address, PASSWORD, client="198.51.100.9")
        assert refused.value.locked
    finally:
        await other.close()


async def test_a_remembered_password_writes_nothing_and_stays_locked_out(
        services: Services) -> None:
    """A password verified before (the cache) is not a guess: its login only reads the
    counters (no attempt row written, none given back); once wrong guesses lock the name, it
    is refused like any other attempt."""
    a = await add_pro(services)
    d = services.directory
    await d.authenticate(a.address, PASSWORD, client="192.0.2.8")  # verified, remembered
    await asyncio.sleep(0.1)  # the first login's slot given back (in the background)
    claims = 0
    claim = d.attempts.claim

    async def counting(keys: list[tuple[str, int]]) -> list[int]:
        nonlocal claims
        claims += 1
        return await claim(keys)

    d.attempts.claim = counting  # type: ignore[method-assign]
    for _ in range(3):
        assert (await d.authenticate(a.address, PASSWORD, client="192.0.2.8")).id == a.id
    assert claims == 0
    for i in range(services.config.auth.lockout_threshold):
        with pytest.raises(AuthError):
            await d.authenticate(a.address, f"wrong-{i}", client="192.0.2.9")
    with pytest.raises(AuthError) as refused:
        await d.authenticate(a.address, PASSWORD, client="192.0.2.8")
    assert refused.value.locked
