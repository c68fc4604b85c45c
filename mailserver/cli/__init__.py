"""The ``mssante`` command line.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function;
``COMMAND_MODULES`` lists them. A handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mailserver.errors import MssanteError

__all__ = ["main", "data_dir_arg", "COMMAND_MODULES"]

COMMAND_MODULES = (
    "mailserver.cli.setup",
    "mailserver.cli.accounts",
    "mailserver.cli.annuaire",
    "mailserver.cli.keys",
    "mailserver.cli.serve",
    "mailserver.cli.trust",
    "mailserver.cli.queue",
    "mailserver.cli.dkim",
    "mailserver.cli.documents",
    "mailserver.cli.tokens",
)


def data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` (default: $MSSANTE_DATA_DIR)."""
    default = os.environ.get("MSSANTE_DATA_DIR")
    parser.add_argument("--data-dir", type=Path, default=Path(default) if default else None,
                        required=default is None,
                        help="data directory (default: $MSSANTE_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mssante", description="Secure health messaging server (MSSante-style).")
    parser.add_argument("--log-level", default=os.environ.get("MSSANTE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mailserver import logs

    logs.setup(args.log_level)
    try:
        return int(args.func(args) or 0)
    except MssanteError as exc:
        print(f"mssante: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
