"""Fixtures: operators of one trust space, each an in-process instance of our server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.interop.operators import Operator, start_operator


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    return tmp_path / "zone.json"


@pytest.fixture
async def operators(tmp_path: Path, zone_file: Path
                    ) -> AsyncIterator[Callable[..., Awaitable[Operator]]]:
    started: list[Operator] = []

    async def start(domain: str, **kw: object) -> Operator:
        op = await start_operator(tmp_path, domain, zone_file, **kw)
        started.append(op)
        return op

    try:
        yield start
    finally:
        for op in reversed(started):
            await op.runtime.close()
