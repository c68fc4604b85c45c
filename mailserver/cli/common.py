"""Helpers shared by the command modules."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from mailserver.app import Services, open_services
from mailserver.config import CONFIG_NAME, Config, load

__all__ = ["load_config", "with_services", "read_password"]

T = TypeVar("T")


def load_config(data_dir: Path) -> Config:
    return load(data_dir / CONFIG_NAME)


def with_services(data_dir: Path, fn: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services of a data dir, run ``fn``, close them."""
    config = load_config(data_dir)

    async def run() -> T:
        services = await open_services(config)
        try:
            return await fn(services)
        finally:
            await services.close()

    return asyncio.run(run())


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    import getpass

    return getpass.getpass("Password: ")
