"""``mssante blobs sweep [--dry-run]``: remove the orphan blob files now (job ``sweep_blobs``)."""

from __future__ import annotations

import argparse

from mailserver.app import Services, blob_sweep
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.store.blob_sweep import SweepResult

__all__ = ["register"]


def _sweep(args: argparse.Namespace) -> int:
    async def run(s: Services) -> tuple[SweepResult, float]:
        sweep = blob_sweep(s)
        return await sweep.run_once(dry_run=args.dry_run), sweep.margin

    result, margin = with_services(args.data_dir, run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{result.old} blob file(s) older than {margin:g} s; {verb} {len(result.orphans)} "
          f"no row names and {result.temp} temporary file(s)")
    return 0


def register(sub: Subparsers) -> None:
    blobs = command_group(sub, "blobs", help="the blob store")
    p = add_command(blobs, "sweep", _sweep,
                    help="remove blob files no row names, older than the safety margin")
    p.add_argument("--dry-run", action="store_true", help="list the count, remove nothing")
