"""``mssante keys rotate`` and ``mssante keys shred``."""

from __future__ import annotations

import argparse

from mailserver.app import Services
from mailserver.cli.common import with_services
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mailserver.cli import data_dir_arg

    keys = sub.add_parser("keys", help="encryption keys")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("rotate", help="rotate the master key (re-wraps mailbox keys)")
    data_dir_arg(p)
    p.set_defaults(func=_rotate)
    p = ks.add_parser("shred", help="destroy a mailbox's data key (crypto-shredding)")
    data_dir_arg(p)
    p.add_argument("address")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(func=_shred)
