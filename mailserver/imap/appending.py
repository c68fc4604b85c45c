"""APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315), MULTIAPPEND (RFC 3502) and literal8
(RFC 3516): the session's handler, mixed into :class:`~mailserver.imap.state.Session`.

Every message is sealed like any stored one.  Several messages in one command are stored in
one transaction (:meth:`MailStore.append_many`): all or none (RFC 3502 3), and one NO for
the command if any of them is refused.

Sent copies: a message submitted over SMTP is already filed in the sender's Sent folder by the
delivery (one transaction with the recipients' copies).  Clients that also APPEND their own
copy to Sent (Thunderbird, Apple Mail, Outlook) would get it twice, so a message APPENDed to
the ``\\Sent`` folder whose Message-ID is already there is not stored again: the APPENDUID
names the existing copy.  Other folders (e.g. Drafts) are never de-duplicated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING

from mailserver.errors import NotFound
from mailserver.store.audit import Action
from mailserver.store.mailstore import AppendItem, FolderInfo
from mailserver.store.records import Prepared

from . import commands as c
from . import encoder as enc
from .auditing import AuditedSession, hook
from .backend import ImapBackend, Response
from .catenate import BadUrl, TooBig, assemble
from .encoder import ResponseCode as RC
from .meta import META_CODEC
from .rawheaders import RAW_POLICY
from .search import decode_header_value

if TYPE_CHECKING:
    from mailserver.directory.service import AccountInfo
    from mailserver.store.imapmeta import ImapStore

    from .mailbox import SelectedMailbox

__all__ = ["AppendCommands"]


def _refusal(message: bytes) -> Response | None:
    if not message:
        return Response("NO", "empty message", RC.CANNOT)
    if b"\x00" in message:  # RFC 3516 4.4: binary content is not stored as such
        return Response("NO", "messages with NUL octets cannot be stored; "
                        "use a base64 Content-Transfer-Encoding", RC("UNKNOWN-CTE"))
    return None


def _item(msg: tuple[tuple[str, ...], datetime | None, bytes]) -> AppendItem:
    flags, date, raw = msg
    hdr = BytesHeaderParser(policy=RAW_POLICY).parsebytes(raw[:65536])
    subject = decode_header_value(str(hdr.get("Subject", ""))) if "Subject" in hdr else None
    sender = decode_header_value(str(hdr.get("From", ""))) if "From" in hdr else None
    msgid = str(hdr.get("Message-ID", "")).strip() or None
    # Stored in UTC: SQLite keeps no offset (the instant is what RFC 3501 2.3.3 needs).
    when = date.astimezone(UTC) if date is not None else None
    return AppendItem(raw, flags, when, subject, sender, msgid)


class AppendCommands(AuditedSession):
    """The APPEND handler (see the module docstring)."""

    backend: ImapBackend
    store: ImapStore
    account: AccountInfo | None
    selected: SelectedMailbox | None

    async def do_append(self, cmd: c.Command) -> Response:
        assert isinstance(cmd, c.Append) and self.account is not None
        try:
            messages = [(f, d, m if isinstance(m, bytes) else await assemble(
                m, self._read_url, self.backend.config.max_literal)) for f, d, m in cmd.messages]
        except BadUrl as exc:  # RFC 4469 6
            url = re.sub(r"[^\x21-\x5c\x5e-\x7e]", "", exc.url)[:200] or "-"
            return Response("NO", "CATENATE URL names no message of yours", RC("BADURL", url))
        except TooBig:
            return Response("NO", "the catenated message is too big", RC("TOOBIG"))
        for msg in messages:
            if (refused := _refusal(msg[2])) is not None:
                return refused
        store = self.backend.store
        try:
            folder = await store.get_folder(self.account.id, cmd.mailbox)
        except NotFound:
            return Response("NO", "no such mailbox", RC.TRYCREATE)
        items = [_item(m) for m in messages]
        existing = await self._already_sent(folder, items)
        todo = [i for n, i in enumerate(items) if n not in existing]
        audit = hook(self._who(), Action.MESSAGE_APPENDED, folder.id, folder.name)
        # RFC 3501 2.3.2: a message appended to the session's selected folder is \Recent in
        # that session; claimed with the message (no commit of its own at the next poll).
        selected = self.selected
        claims: list[tuple[int, int]] = []
        mine = (selected is not None and selected.folder_id == folder.id
                and not selected.readonly and not selected.rev2)
        stored = iter(await store.append_many(
            self.account.id, folder.id, todo, audit=audit, summarise=self._summarise,
            then=self.store.recent_claimer(folder.id, claims) if mine else None)
            if todo else [])
        if claims and selected is not None:
            selected.claimed.extend(claims)
        uids = [existing[n] if n in existing else next(stored).uid for n in range(len(items))]
        text = "APPEND completed" + (" (already in Sent)" if existing and not todo else "")
        return Response("OK", text, enc.code_appenduid(folder.uidvalidity, uids))

    async def _summarise(self, prepared: Prepared, raw: bytes) -> bytes | None:
        """The summary cache a delivery gets from the summary builder, built at APPEND: the
        client's next FETCH ENVELOPE / BODYSTRUCTURE of it then parses nothing."""
        return await self.store.sealed_summary(prepared.account_id, prepared.storage_key, raw,
                                               META_CODEC)

    async def _read_url(self, mailbox: str, uidvalidity: int | None, uid: int) -> bytes | None:
        """A CATENATE URL's message: the account's own only (no URLAUTH)."""
        assert self.account is not None
        try:
            folder = await self.backend.store.get_folder(self.account.id, mailbox)
        except NotFound:
            return None
        if uidvalidity is not None and uidvalidity != folder.uidvalidity:
            return None
        rows = await self.store.rows(folder.id, [uid])
        return await self.store.raw(rows[0].id) if rows else None

    async def _already_sent(self, folder: FolderInfo, items: list[AppendItem]
                            ) -> dict[int, int]:
        """Index in ``items`` → UID of the copy already in the Sent folder."""
        if folder.special_use != "\\Sent":
            return {}
        assert self.account is not None
        out: dict[int, int] = {}
        for n, item in enumerate(items):
            if item.message_id:
                for m in await self.backend.store.find_by_message_id(self.account.id,
                                                                     [item.message_id]):
                    if m.folder_id == folder.id:
                        out[n] = m.uid
                        break
        return out
