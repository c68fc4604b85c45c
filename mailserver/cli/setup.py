"""``mssante init``: create a data directory."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from mailserver.cli.common import Subparsers, add_command
from mailserver.config import CONFIG_NAME, dump, load
from mailserver.dkim import signing as dkim
from mailserver.errors import ValidationError
from mailserver.migrations import schema_status, upgrade
from mailserver.store.crypto import MasterKeyring
from mailserver.tls import issue_certificate, make_ca

__all__ = ["register", "init_data_dir"]

DATABASE_SCHEMES = ("postgresql+asyncpg://", "sqlite+aiosqlite:///")


def init_data_dir(data_dir: Path, domain: str, *, patient_domain: str = "",
                  database_url: str = "") -> None:
    """Create DIR with its configuration, master key, development CA + certificate, DKIM key.

    Refuses an existing non-empty directory. The database (SQLite in DIR, or ``database_url``,
    which must hold no table yet) gets the schema of this release, by the migrations.
    """
    domain = domain.strip().lower()
    if "." not in domain or not all(p and p.replace("-", "").isalnum()
                                    for p in domain.split(".")):
        raise ValidationError(f"invalid domain {domain!r}")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ValidationError(f"{data_dir} exists and is not empty; refusing to touch it")
    if database_url:
        asyncio.run(_check_empty(database_url))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / CONFIG_NAME).write_text(dump(domain, patient_domain, database_url))
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
    asyncio.run(upgrade(load(data_dir / CONFIG_NAME).database_url))


async def _check_empty(url: str) -> None:
    """Refuse a URL the server cannot use, or a database that already holds tables."""
    if not url.startswith(DATABASE_SCHEMES) or any(c in url for c in '"\\\n'):
        raise ValidationError(f"--database-url must start with {' or '.join(DATABASE_SCHEMES)}")
    try:
        status = await schema_status(url)
    except (SQLAlchemyError, OSError) as exc:
        raise ValidationError(f"cannot reach the database: {type(exc).__name__}") from exc
    if not status.empty:
        raise ValidationError(f"the database already holds a schema ({status.label}); "
                              "give an empty one, or use 'mssante migrate' with its data dir")


def _make_dkim(data_dir: Path) -> None:

    (data_dir / "dkim").mkdir(mode=0o700, exist_ok=True)
    dkim.generate_keys(data_dir / "dkim", "mss1")


def _cmd_init(args: argparse.Namespace) -> int:
    init_data_dir(args.data_dir, args.domain, patient_domain=args.patient_domain or "",
                  database_url=args.database_url or "")
    print(f"Initialised {args.data_dir} for {args.domain}")
    if args.database_url:
        print("  database: the schema was created at [store] database_url")
    print(f"  configuration: {args.data_dir / CONFIG_NAME}")
    print(f"  development CA: {args.data_dir / 'tls' / 'ca.pem'}")
    print(f"  postmaster: mail for postmaster goes to postmaster@{args.domain.strip().lower()};"
          " create it with 'mssante org add' or set [smtp] postmaster")
    return 0


def register(sub: Subparsers) -> None:
    p = add_command(sub, "init", _cmd_init, help="create a data directory")
    p.add_argument("--domain", required=True, help="the operator's professional domain")
    p.add_argument("--patient-domain", help="patients' domain (default patient.<domain>)")
    p.add_argument("--database-url", metavar="URL",
                   help="an empty PostgreSQL database (postgresql+asyncpg://user@host/db): "
                        "the schema is created there and the URL written to the configuration "
                        "(default: SQLite in the data dir)")
