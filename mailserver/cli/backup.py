"""``mssante backup`` and ``mssante restore``: a consistent copy of a running data dir.

What a backup holds: the SQLite database (online backup API), the blobs its rows point at
(hard links where the file system allows, else copies), the configuration, the TLS
certificates and keys, the DKIM keys and the trust list. Never the master key: without it the
copy is unreadable, and it must be kept apart from the data (``MANIFEST.json`` names the key
ids it needs). On PostgreSQL, or with blobs in an S3 bucket, the command refuses and names the
engine's own tools.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from mailserver.cli.common import Subparsers, add_command, load_config
from mailserver.config import CONFIG_NAME, Config
from mailserver.store import snapshot
from mailserver.store.crypto import MasterKeyring

__all__ = ["register", "MANIFEST"]

MANIFEST = "MANIFEST.json"
DATABASE = "mssante.db"
BLOBS = "blobs"

POSTGRES_TEXT = """mssante: backup: the database is PostgreSQL ([store] database_url).
This command copies SQLite data dirs only. Back PostgreSQL up with its own tools:
  pg_dump -Fc -f mssante.dump DBNAME      (logical, consistent, while the server runs)
  pg_basebackup -D DIR -X stream          (physical, with WAL archiving for point-in-time)
then copy the blob folder ({blobs}) after the dump, and the configuration, tls/, dkim/ and
trust/ folders; keep the master key ({key}) apart. See docs/OPERATIONS.md."""

S3_TEXT = """mssante: backup: the blobs are in an S3 bucket ([store] blob_url = "{url}").
This command copies SQLite data dirs with local blobs only. Back the bucket up with the
object store's own tools, after the database (pg_dump, or sqlite3 .backup):
  bucket versioning with a lifecycle rule, and replication to a second site or bucket
  aws s3 sync s3://{bucket}/{prefix} DIR --endpoint-url {endpoint}   (a copy, run after the dump)
  SeaweedFS: weed filer.backup / weed filer.sync (continuous), weed filer.meta.backup
then the configuration, tls/, dkim/ and trust/ folders; keep the master key ({key}) apart.
See docs/OPERATIONS.md."""


def _refusal(config: Config) -> str | None:
    """The text that refuses a backup this command cannot make, or None."""
    key_file = config.path(config.store.master_key_file)
    location = config.store.s3_location
    if location is not None:
        return S3_TEXT.format(url=config.store.blob_url, bucket=location[0],
                              prefix=location[1], key=key_file,
                              endpoint=config.store.s3_endpoint or "https://s3.amazonaws.com")
    if config.store.database_url and not config.store.database_url.startswith("sqlite"):
        return POSTGRES_TEXT.format(blobs=config.path(config.store.blob_dir), key=key_file)
    return None


def _config_files(config: Config) -> list[Path]:
    """Files of the data dir a server needs besides the database, blobs and master key."""
    t, d, tr = config.tls, config.dkim, config.trust
    files = [config.data_dir / CONFIG_NAME]
    files += [config.path(p) for p in (t.cert_file, t.key_file, t.ca_file, t.ca_key_file,
                                       t.ec_cert_file, t.ec_key_file, tr.local_file,
                                       tr.last_good_file)]
    for folder in {config.path(d.key_file).parent, config.path(d.ed25519_key_file).parent}:
        if folder.is_dir():
            files += [p for p in folder.iterdir() if p.is_file()]
    if tr.whitelist_file:
        files.append(config.path(Path(tr.whitelist_file)))
    return [f for f in dict.fromkeys(files) if f.is_file()]


def _empty_target(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SystemExit(f"mssante: {what}: {path} exists and is not empty")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _copy_config(config: Config, target: Path) -> list[str]:
    copied = []
    for path in _config_files(config):
        try:
            rel = path.resolve().relative_to(config.data_dir.resolve())
        except ValueError:
            print(f"warning: {path} is outside the data dir: not included, back it up apart")
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / rel)
        copied.append(str(rel))
    return copied


def _backup(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    key_file = config.path(config.store.master_key_file)
    refusal = _refusal(config)
    if refusal is not None:
        print(refusal)
        return 2
    target: Path = args.to
    _empty_target(target, "backup")
    source = Path(config.database_url.split("///", 1)[1])
    blobs = config.path(config.store.blob_dir)
    linked, copied = snapshot.link_blobs(blobs, target / BLOBS)  # before the snapshot
    snapshot.sqlite_backup(source, target / DATABASE)
    more = snapshot.link_blobs(blobs, target / BLOBS)  # written while it was taken
    linked, copied = linked + more[0], copied + more[1]
    wanted = snapshot.referenced_blobs(target / DATABASE)
    for key, path in list(snapshot.blob_files(target / BLOBS)):
        if key not in wanted:
            path.unlink()
    missing = wanted - {key for key, _ in snapshot.blob_files(target / BLOBS)}
    if missing:
        print(f"mssante: backup: {len(missing)} blobs vanished during the copy; run it again")
        return 1
    files = _copy_config(config, target)
    key_ids = sorted(snapshot.master_key_ids(target / DATABASE))
    manifest = {"created_at": datetime.now(UTC).isoformat(), "source": str(config.data_dir),
                "database": DATABASE, "blobs": len(wanted), "files": files,
                "master_key_ids": key_ids, "master_key_file": str(config.store.master_key_file)}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"backup written to {target}: database, {len(wanted)} blobs ({linked} hard links, "
          f"{copied} copies), {len(files)} configuration files")
    print(f"NOT included: the master key ({key_file}, key ids {', '.join(key_ids) or '-'}). "
          "Keep a copy apart from this backup: without it the backup cannot be read.")
    return 0


def _install_master_key(source: Path, restored: Config, needed: list[str]) -> None:
    dest = restored.path(restored.store.master_key_file)
    ring = MasterKeyring.load(source)
    absent = [k for k in needed if k not in ring.keys]
    if absent:
        raise SystemExit(f"mssante: restore: {source} lacks master key ids {', '.join(absent)}")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    os.chmod(dest, 0o600)


def _restore(args: argparse.Namespace) -> int:
    source: Path = args.source
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError):
        raise SystemExit(f"mssante: restore: {source} holds no {MANIFEST}") from None
    target: Path = args.data_dir
    _empty_target(target, "restore")
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            rel = path.relative_to(source)
            (target / rel).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)
    check = snapshot.quick_check(target / DATABASE)
    missing = snapshot.referenced_blobs(target / DATABASE) - {
        k for k, _ in snapshot.blob_files(target / BLOBS)}
    if check != "ok" or missing:
        print(f"mssante: restore: damaged copy: quick_check={check}, {len(missing)} blobs missing")
        return 1
    restored = load_config(target)
    key_file = restored.path(restored.store.master_key_file)
    if args.master_key:
        _install_master_key(args.master_key, restored, manifest.get("master_key_ids", []))
        print(f"master key installed at {key_file}")
    else:
        print(f"now copy the master key file (key ids "
              f"{', '.join(manifest.get('master_key_ids', [])) or '-'}) to {key_file}, "
              "mode 0600, before starting the server")
    print(f"restored {manifest.get('created_at', '?')} backup into {target}: "
          f"mssante serve --data-dir {target} ...")
    return 0


def register(sub: Subparsers) -> None:
    p = add_command(sub, "backup", _backup, help="consistent copy of a running data dir "
                    "(never the master key)")
    p.add_argument("--to", type=Path, required=True, metavar="PATH",
                   help="new (or empty) folder for the backup")
    r = sub.add_parser("restore", help="a data dir from a backup")
    r.add_argument("--from", dest="source", type=Path, required=True, metavar="PATH")
    r.add_argument("--data-dir", type=Path, required=True, help="new (or empty) data dir")
    r.add_argument("--master-key", type=Path, metavar="FILE",
                   help="the master key file to install (else copy it yourself)")
    r.add_argument("--operator", metavar="NAME",
                   help="who runs this, for the audit trail (default: $SUDO_USER, $USER)")
    r.set_defaults(func=_restore, command_path="restore")
