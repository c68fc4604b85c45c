"""``mssante migrate``: bring the data dir's database to this release's schema."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mailserver.app import open_services
from mailserver.cli.common import Subparsers, load_config
from mailserver.config import Config
from mailserver.migrations import Upgrade, head, schema_status
from mailserver.migrations.authoring import new_revision

__all__ = ["register", "migrate_data_dir"]


async def migrate_data_dir(config: Config) -> Upgrade | None:
    """Upgrade to the head, with the one-off data fixes a pre-migration database needs (done
    by opening the services); None when it was already there."""
    services = await open_services(config, migrate=True)
    try:
        return services.schema_upgrade
    finally:
        await services.close()


def print_upgrade(done: Upgrade | None) -> None:
    if done is None:
        print(f"mssante: database schema already at {head()}")
    else:
        print(f"mssante: database schema migrated from {done.before} to {done.after}")


def _migrate(args: argparse.Namespace) -> int:
    if args.new:
        path = asyncio.run(new_revision(args.new))
        print(f"wrote {path}" if path else "the models and the head revision agree: "
              "nothing to write")
        return 0
    if args.data_dir is None:
        print("mssante migrate: give --data-dir (or set MSSANTE_DATA_DIR)")
        return 2
    config = load_config(args.data_dir)
    if args.status:
        status = asyncio.run(schema_status(config.database_url))
        print(f"database schema: {status.label}; this release: {status.head}")
        return 0 if status.current == status.head else 1
    print_upgrade(asyncio.run(migrate_data_dir(config)))
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("migrate", help="upgrade the database schema to this release's "
                                       "(forward-only)")
    default = os.environ.get("MSSANTE_DATA_DIR")
    p.add_argument("--data-dir", type=Path, default=Path(default) if default else None,
                   help="data directory (default: $MSSANTE_DATA_DIR)")
    p.set_defaults(func=_migrate)
    p.add_argument("--status", action="store_true",
                   help="only print the database's revision and this release's (exit 1 if "
                        "they differ)")
    p.add_argument("--new", metavar="MESSAGE",
                   help="developers: write a revision for the models' changes since the head")
