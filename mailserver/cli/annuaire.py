"""``mssante directory import FILE``: the national MSSanté extraction, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from mailserver.cli.common import Subparsers, add_command, command_group, load_config
from mailserver.directory.annuaire import count_rows, import_extraction
from mailserver.migrations import ensure_schema
from mailserver.store.db import Database

__all__ = ["register"]


def _import(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    path = Path(args.file)
    total = count_rows(path)

    async def run() -> None:
        await ensure_schema(config.database_url, migrate=False)
        db = Database(config.database_url)
        try:
            with Progress("[progress.description]{task.description}", BarColumn(),
                          MofNCompleteColumn(), TimeRemainingColumn(),
                          disable=args.quiet) as bar:
                task = bar.add_task("Importing directory", total=total)
                stats = await import_extraction(db, path,
                                                progress=lambda n: bar.advance(task, n))
        finally:
            await db.close()
        print(f"inserted {stats.inserted}, updated {stats.updated}, "
              f"unchanged {stats.unchanged}, rejected {stats.rejected}")

    asyncio.run(run())
    return 0


def register(sub: Subparsers) -> None:
    ds = command_group(sub, "directory", help="the national MSSante directory")
    p = add_command(ds, "import", _import,
                    help="import an 'Extraction Correspondance MSSante' file")
    p.add_argument("file")
    p.add_argument("--quiet", action="store_true")
