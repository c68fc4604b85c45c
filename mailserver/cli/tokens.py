"""``mssante token``: bearer tokens for professionals' software on ``/fhir/`` (IHE MHD).

``token issue --email ADDR`` prints a new token once (only its SHA-256 is stored);
``token list --email ADDR`` shows the account's tokens; ``token revoke ID`` revokes one.
"""

from __future__ import annotations

import argparse

from dossier_bridge.tokens import TokenRepository
from mailserver.app import Services
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.directory.service import AccountInfo
from mailserver.errors import UnknownAddress, ValidationError

__all__ = ["register"]


async def _professional(s: Services, email: str) -> AccountInfo:
    info = await s.directory.lookup(email)
    if info is None:
        raise UnknownAddress(f"no mailbox {email}")
    if info.is_patient:
        raise ValidationError("tokens are for professionals' mailboxes only")
    return info


def _issue(args: argparse.Namespace) -> int:
    async def run(s: Services) -> str:
        account = await _professional(s, args.email)
        return await TokenRepository(s.db).issue(account.id, args.label or "")

    print(with_services(args.data_dir, run))
    return 0


def _list(args: argparse.Namespace) -> int:
    async def run(s: Services) -> list[str]:
        account = await _professional(s, args.email)
        return [f"{t.id}\t{t.created_at:%Y-%m-%d %H:%M}\t{'revoked' if t.revoked else 'active'}"
                f"\t{t.label}" for t in await TokenRepository(s.db).list(account.id)]

    for line in with_services(args.data_dir, run):
        print(line)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    async def run(s: Services) -> bool:
        return await TokenRepository(s.db).revoke(args.id)

    if not with_services(args.data_dir, run):
        print("No such active token")
        return 1
    print("Token revoked")
    return 0


def register(sub: Subparsers) -> None:
    group = command_group(sub, "token", help="bearer tokens for the FHIR API (/fhir/)")
    p = add_command(group, "issue", _issue, help="issue a token for a professional's mailbox")
    p.add_argument("--email", required=True)
    p.add_argument("--label", help="what the token is for (e.g. the software's name)")
    p = add_command(group, "list", _list, help="list a mailbox's tokens")
    p.add_argument("--email", required=True)
    p = add_command(group, "revoke", _revoke, help="revoke a token by id")
    p.add_argument("id", type=int)
