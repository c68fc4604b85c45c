"""The ``mssante`` command line.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function;
``COMMAND_MODULES`` lists them explicitly. A handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mailserver import logs
from mailserver.cli import (
    accounts,
    accounts_campaign,
    accounts_closing,
    accounts_export,
    accounts_inactive,
    accounts_lifecycle,
    annuaire,
    audit,
    backup,
    blobs,
    dkim,
    documents,
    keys,
    migrate,
    queue,
    serve,
    setup,
    tokens,
    trust,
)
from mailserver.cli.common import data_dir_arg
from mailserver.errors import MssanteError

__all__ = ["main", "data_dir_arg", "COMMAND_MODULES"]

COMMAND_MODULES = (setup, accounts, accounts_lifecycle, accounts_closing, accounts_campaign,
                   accounts_export, accounts_inactive, annuaire, keys, serve, trust, queue,
                   dkim, documents, tokens, backup, blobs, migrate, audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mssante", description="Secure health messaging server (MSSante-style).")
    parser.add_argument("--log-level", default=os.environ.get("MSSANTE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    code = 1
    try:
        code = int(args.func(args) or 0)
    except MssanteError as exc:
        print(f"mssante: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    finally:
        _record(args, "ok" if code == 0 else f"exit-{code}")
    return code


def _record(args: argparse.Namespace, outcome: str) -> None:
    """The audit row of a mutating command; a failure to write it is reported, not
    raised (the command itself already ran)."""
    try:
        audit.record_command(args, outcome)
    except Exception as exc:  # noqa: BLE001 - never turns a done command into a failure
        print(f"mssante: warning: command not recorded in the audit trail: {exc}",
              file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
