"""``mssante keys rotate`` and ``mssante keys shred``."""

from __future__ import annotations

import argparse

from mailserver.app import Services
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.errors import UnknownAddress

__all__ = ["register"]


def _rotate(args: argparse.Namespace) -> int:
    async def run(s: Services) -> int:
        return await s.keys.rotate_master()

    n = with_services(args.data_dir, run)
    print(f"Master key rotated; {n} mailbox keys re-wrapped")
    return 0


def _shred(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await s.directory.lookup(args.address)
        if info is None:
            raise UnknownAddress(f"no mailbox {args.address}")
        await s.keys.destroy(info.id)

    if not args.yes:
        print("Refusing without --yes: this destroys the mailbox's data for good")
        return 1
    with_services(args.data_dir, run)
    print("Mailbox data key destroyed: its stored data can no longer be read")
    return 0


def register(sub: Subparsers) -> None:
    ks = command_group(sub, "keys", help="encryption keys")
    add_command(ks, "rotate", _rotate, help="rotate the master key (re-wraps mailbox keys)")
    p = add_command(ks, "shred", _shred, help="destroy a mailbox's data key (crypto-shredding)")
    p.add_argument("address")
    p.add_argument("--yes", action="store_true")
