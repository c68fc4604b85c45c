"""``mssante init``: create a data directory."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from mailserver.cli.common import Subparsers, add_command
from mailserver.config import CONFIG_NAME, dump, load
from mailserver.dkim import signing as dkim
from mailserver.errors import ValidationError
from mailserver.schema import create_schema
from mailserver.store.crypto import MasterKeyring
from mailserver.store.db import Database
from mailserver.tls import issue_certificate, make_ca

__all__ = ["register", "init_data_dir"]


def init_data_dir(data_dir: Path, domain: str, *, patient_domain: str = "") -> None:
    """Create DIR with its configuration, master key, development CA + certificate, DKIM key.

    Refuses an existing non-empty directory. The SQLite database is created here too.
    """
    domain = domain.strip().lower()
    if "." not in domain or not all(p and p.replace("-", "").isalnum()
                                    for p in domain.split(".")):
        raise ValidationError(f"invalid domain {domain!r}")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ValidationError(f"{data_dir} exists and is not empty; refusing to touch it")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / CONFIG_NAME).write_text(dump(domain, patient_domain))
    MasterKeyring.create(data_dir / "keys" / "master.key")
    tls = data_dir / "tls"
    make_ca(tls / "ca.pem", tls / "ca.key", f"MSSante dev CA {domain}")
    issue_certificate(tls / "ca.pem", tls / "ca.key", tls / "server.pem", tls / "server.key",
                      [domain, f"mail.{domain}", "localhost", "127.0.0.1"],
                      organisation=f"Operateur {domain}")
    issue_certificate(tls / "ca.pem", tls / "ca.key", tls / "server-ec.pem", tls / "server-ec.key",
                      [domain, f"mail.{domain}", "localhost", "127.0.0.1"],
                      organisation=f"Operateur {domain}", key_type="ec")
    _make_dkim(data_dir)
    config = load(data_dir / CONFIG_NAME)

    async def create() -> None:
        db = Database(config.database_url)
        await create_schema(db)
        await db.close()

    asyncio.run(create())


def _make_dkim(data_dir: Path) -> None:
    (data_dir / "dkim").mkdir(mode=0o700, exist_ok=True)
    dkim.generate_keys(data_dir / "dkim", "mss1")


def _cmd_init(args: argparse.Namespace) -> int:
    init_data_dir(args.data_dir, args.domain, patient_domain=args.patient_domain or "")
    print(f"Initialised {args.data_dir} for {args.domain}")
    print(f"  configuration: {args.data_dir / CONFIG_NAME}")
    print(f"  development CA: {args.data_dir / 'tls' / 'ca.pem'}")
    print(f"  postmaster: mail for postmaster goes to postmaster@{args.domain.strip().lower()};"
          " create it with 'mssante org add' or set [smtp] postmaster")
    return 0


def register(sub: Subparsers) -> None:
    p = add_command(sub, "init", _cmd_init, help="create a data directory")
    p.add_argument("--domain", required=True, help="the operator's professional domain")
    p.add_argument("--patient-domain", help="patients' domain (default patient.<domain>)")
