"""Shared fixtures: data dirs, configs, services, a running server on ephemeral ports.

The database is SQLite in the test's data dir, or a fresh PostgreSQL database per test when
MSSANTE_TEST_DATABASE_URL points at a server (e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``); each test's database is dropped at
the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailserver.app import Services, open_services
from mailserver.cli.setup import init_data_dir
from mailserver.config import AuthConfig, Config, ListenConfig, load
from mailserver.imap.server import Connection
from mailserver.runtime import Runtime, start_runtime
from tests.imap_unit.responses import ResponseStream

DOMAIN = "hopital.mssante.test"
PATIENT_DOMAIN = f"patient.{DOMAIN}"
PASSWORD = "correct-horse-battery"  # noqa: S105 - test credential
PG_URL = os.environ.get("MSSANTE_TEST_DATABASE_URL", "")

# Valid test identifiers (Luhn RPPS; INS with its key).
RPPS = ("10003244273", "10000000017", "10000000025", "10000000033", "10000000041",
        "99700218896")
INS = ("279035121518989", "185127510812395")


def _pg_admin_url() -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def imap_grammar(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every IMAP response any test's server writes is checked against RFC 3501/9051's formal
    syntax (:mod:`tests.imap_unit.responses`); a malformed one fails the test at teardown.
    Yields the list of responses checked so far."""
    errors: list[str] = []
    checked: list[bytes] = []
    send = Connection.send

    async def checking(self: Connection, data: bytes) -> None:
        stream = self.__dict__.setdefault("_grammar", ResponseStream())
        stream.feed(data)
        errors.extend(stream.errors)
        checked.extend(stream.responses)
        stream.errors.clear()
        stream.responses.clear()
        await send(self, data)

    monkeypatch.setattr(Connection, "send", checking)
    yield checked
    assert not errors, "malformed IMAP responses:\n" + "\n".join(errors[:10])


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        yield ""
        return
    name = f"mssante_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_data_dir(path: Path, domain: str = DOMAIN) -> Path:
    init_data_dir(path, domain)
    return path


def make_config(data_dir: Path, database_url: str = "", **overrides: object) -> Config:
    config = load(data_dir / "mssante.toml")
    store = dataclasses.replace(config.store, database_url=database_url) if database_url \
        else config.store
    auth = AuthConfig(fail_delay=0.0, max_fail_delay=0.0, lockout_threshold=5,
                      lockout_seconds=300)
    return dataclasses.replace(config, store=store, auth=auth, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path / "data")


@pytest.fixture
def config(data_dir: Path, database_url: str) -> Config:
    return make_config(data_dir, database_url)


@pytest.fixture
async def services(config: Config) -> AsyncIterator[Services]:
    s = await open_services(config, fast_passwords=True)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def runtime(config: Config, services: Services) -> AsyncIterator[Runtime]:
    """The real server (submission + inbound SMTP) on ephemeral 127.0.0.1 ports."""
    rt = await start_runtime(config, ListenConfig(submission="127.0.0.1:0",
                                                  submissions="127.0.0.1:0",
                                                  smtp="127.0.0.1:0"), services=services)
    try:
        yield rt
    finally:
        rt.services = services  # closed by the services fixture too; closing twice is safe
        await rt.close()


@pytest.fixture
def client_tls(data_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def add_pro(s: Services, local: str = "dr.martin", rpps: str = RPPS[0],
                  profession: str = "10", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await s.directory.add_professional(
        rpps=rpps, email=f"{local}@{DOMAIN}", name=local.replace(".", " ").title(),
        profession=profession, password=password)


async def add_patient(s: Services, ins: str = INS[0], status: str = "open"):  # type: ignore[no-untyped-def]
    info, _code = await s.directory.add_patient(ins=ins, name="Marie Dupont", status=status)
    return info
