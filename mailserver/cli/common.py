"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TypeAlias, TypeVar

from mailserver import logs
from mailserver.app import Services, open_services
from mailserver.config import CONFIG_NAME, Config, load
from mailserver.errors import ValidationError
from mailserver.lifecycle import PARIS, paris_date

__all__ = [
    "Handler", "Subparsers", "add_command", "command_group", "load_config", "read_password",
    "with_services", "data_dir_arg",
]


def data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` (default: $MSSANTE_DATA_DIR)."""
    default = os.environ.get("MSSANTE_DATA_DIR")
    parser.add_argument("--data-dir", type=Path, default=Path(default) if default else None,
                        required=default is None,
                        help="data directory (default: $MSSANTE_DATA_DIR)")

T = TypeVar("T")

# A string: _SubParsersAction is generic only in the type stubs, not at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]
"""A command handler: returns the process exit code."""


_GROUPS: weakref.WeakKeyDictionary[argparse.ArgumentParser, Subparsers] = \
    weakref.WeakKeyDictionary()


def command_group(sub: Subparsers, name: str, *, help: str) -> Subparsers:
    """Add ``mssante <name> <subcommand>``; returns the subparsers to add subcommands to.

    Several command modules may add to one group: the group made by the first call is returned
    to the later ones (their ``help`` is then ignored).
    """
    group = sub.choices.get(name)
    if group is not None and group in _GROUPS:
        return _GROUPS[group]
    group = sub.add_parser(name, help=help)
    commands = group.add_subparsers(dest=f"{name}_command", required=True)
    _GROUPS[group] = commands
    return commands


def add_command(sub: Subparsers, name: str, func: Handler, *,
                help: str) -> argparse.ArgumentParser:
    """Add a (sub)command that takes ``--data-dir`` and is run by ``func``.

    Returns its parser, for the command's own arguments.
    """
    parser = sub.add_parser(name, help=help)
    data_dir_arg(parser)
    parser.add_argument("--operator", metavar="NAME",
                        help="who runs this, for the audit trail (default: $SUDO_USER, $USER)")
    parser.set_defaults(func=func, command_path=parser.prog.partition(" ")[2])
    return parser


def load_config(data_dir: Path) -> Config:
    """The data dir's configuration; its ``[logging] format`` applies from now on."""
    config = load(data_dir / CONFIG_NAME)
    logs.set_format(config.logging.format)
    return config


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


def as_of_instant(day: date | None, *, dry_run: bool, what: str) -> datetime | None:
    """``--as-of DAY`` as 00:00 Europe/Paris that day; a day in the future only with
    ``--dry-run`` (``what`` says what a real run would do too early)."""
    if day is None:
        return None
    if day > paris_date(datetime.now(UTC)) and not dry_run:
        raise ValidationError(f"--as-of in the future {what}: use it with --dry-run")
    return datetime.combine(day, time(0), tzinfo=PARIS)
