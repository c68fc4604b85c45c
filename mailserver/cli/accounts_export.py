"""``mssante accounts export --ins INS --to FILE.zip``: a patient's data export, written by
an agent or a test (the same archive as the webmail's "Télécharger mes données")."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from mailserver.app import Services
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.errors import NotFound
from mailserver.identifiers import validate_ins
from mailserver.runtime import account_export

__all__ = ["register", "export_to"]


async def export_to(s: Services, ins: str, target: Path) -> int:
    """Write the export of the patient ``ins`` to ``target`` (readable by its owner only;
    written under a temporary name, renamed when complete). Returns its size."""
    info = await s.directory.by_ins(validate_ins(ins))
    if info is None or not info.is_patient:
        raise NotFound("no patient account with this INS")
    partial = target.with_name(target.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as sink:
            size = await account_export(s).write_to(info, datetime.now(UTC), sink)
            sink.flush()
            os.fsync(sink.fileno())
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


def _export(args: argparse.Namespace) -> int:
    async def run(s: Services) -> int:
        return await export_to(s, args.ins, args.to)

    size = with_services(args.data_dir, run)
    print(f"Export written: {args.to} ({size} bytes)")
    return 0


def register(sub: Subparsers) -> None:
    group = command_group(sub, "accounts", help="patient accounts' lifecycle")
    p = add_command(group, "export", _export,
                    help="write a patient's data export (ZIP: messages, documents, profile, "
                         "access log)")
    p.add_argument("--ins", required=True, help="the patient's INS (15 characters)")
    p.add_argument("--to", required=True, type=Path, metavar="FILE.zip")
