"""The patient's mailbox as the webmail sees it: conversations, their messages, replies,
new messages to pharmacies and read receipts. Front-end neutral (the HTML views and the JSON
API both call it); all sending goes through ``services.delivery`` and therefore the one send
policy (``mailserver.policy``) that SMTP submission also uses.
"""

from __future__ import annotations

import email.utils
import logging
import mimetypes
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage

from mailserver.delivery import DeliveryReport
from mailserver.directory.service import AccountInfo
from mailserver.errors import PolicyDenied
from mailserver.inbox_index import correspondent_name
from mailserver.policy import Closing, Reason, closing
from mailserver.store.audit import (
    Action,
    AuditEvent,
    AuditHook,
    Channel,
    Origin,
    uid_details,
)
from mailserver.store.conversations import CONVERSATION_FOLDERS, ConversationInfo, IndexEntry
from mailserver.store.records import SEEN
from webmail.deps import WebmailDeps
from webmail.render import (
    RENDER_VERSION,
    Attachment,
    Rendered,
    body_text,
    parse_message,
    render_message,
    rendering_bytes,
    rendering_from_bytes,
)

__all__ = ["Mailbox", "ConversationSummary", "StoredMessage", "Upload", "REASON_FR",
           "PER_PAGE", "MESSAGES_PER_PAGE", "MAX_UPLOAD_TOTAL", "MAX_UPLOADS", "ReplyRefused",
           "BODY_SEARCH_MESSAGES"]

log = logging.getLogger(__name__)

PER_PAGE = 20
MAX_UPLOAD_TOTAL = 20 * 1000 * 1000
MAX_UPLOADS = 10
BODY_SEARCH_MESSAGES = 200
"""Search reads the bodies of the patient's most recent messages only (decrypting is the cost)."""
MESSAGES_PER_PAGE = 10
KEPT_RENDERING_MAX = 1 << 20
"""Renderings larger than this (JSON bytes: a huge HTML body) are not kept, made each time."""
_INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_FOLDERS = CONVERSATION_FOLDERS

REASON_FR: dict[Reason, str] = {
    Reason.INVALID_ADDRESS: "L'adresse du destinataire n'est pas valide.",
    Reason.UNKNOWN_RECIPIENT: "Ce destinataire est inconnu.",
    Reason.RECIPIENT_NOT_OPEN: "La messagerie de ce destinataire est fermée.",
    Reason.OUTSIDE_TRUST_SPACE: "Ce destinataire est hors de l'espace de confiance MSSanté.",
    Reason.SENDER_OUTSIDE_TRUST_SPACE: "Envoi impossible depuis cette adresse.",
    Reason.SENDER_NOT_AUTHORISED: "Votre messagerie ne permet pas d'envoyer de message "
                                  "(compte fermé ou suspendu).",
    Reason.PATIENT_TO_PATIENT: "Vous ne pouvez pas écrire à un autre patient.",
    Reason.PATIENT_CANNOT_START: "Vous pouvez seulement répondre à un professionnel qui vous a "
                                 "écrit, ou écrire à une pharmacie où vous avez été servi "
                                 "dans l'année.",
    Reason.CONVERSATION_CLOSED: "Le professionnel a clos cette conversation : vous ne pouvez "
                                "plus y répondre.",
    Reason.NOT_A_PARTICIPANT: "Ce destinataire ne participe pas à cette conversation.",
    Reason.TOO_LARGE: "Le message dépasse la taille maximale (25 Mo).",
    Reason.MAILBOX_SHREDDED: "La messagerie de ce destinataire a été supprimée.",
}


class ReplyRefused(Exception):
    """The webmail refuses before asking delivery (French text for the patient)."""

    def __init__(self, text: str, status: int = 403) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class StoredMessage:
    id: int
    folder: str
    folder_id: int
    uid: int
    flags: frozenset[str]
    internaldate: datetime

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags


@dataclass(frozen=True)
class ConversationSummary:
    id: int
    title: str
    correspondent: str
    unread: int
    total: int
    updated_at: datetime
    closed: bool


def display_title(subject: str) -> str:
    """The conversation title a patient reads.

    A subject of exactly ``[FIN]`` is the professional's way of closing the exchanges
    (MSSanté convention): say so in words instead of showing the bare marker.
    """
    subject = " ".join(subject.split())
    if closing(subject) is Closing.ALL_WITH_SENDER:
        return "Fin des échanges"
    return subject or "(sans objet)"


def _fold(text: str) -> str:
    """Case- and accent-insensitive form for search."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold())
                   if not unicodedata.combining(c))


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Mailbox:
    """Reading and writing a patient's conversations."""

    def __init__(self, deps: WebmailDeps) -> None:
        self.directory = deps.directory
        self.audit = deps.audit
        self.store = deps.store
        self.conversations_index = deps.conversations
        self.delivery = deps.delivery
        self.queries = deps.queries
        self.receipts = deps.receipts
        self.documents = deps.documents
        self.webstore = deps.webstore
        self.patient_domain = deps.settings.patient_domain

    # -- reading --------------------------------------------------------------------------

    async def _rows(self, account_id: int, conversation_id: int | None = None
                    ) -> list[tuple[int | None, StoredMessage]]:
        rows = await self.queries.conversation_messages(account_id, _FOLDERS, conversation_id)
        return [(r.conversation_id, StoredMessage(r.id, r.folder, r.folder_id, r.uid, r.flags,
                                                  r.internaldate)) for r in rows]

    async def heading(self, conv: ConversationInfo) -> tuple[str, str]:
        """(title, professional's name) of a conversation, from one read of the inbox index
        (patients see names, not necessarily addresses)."""
        entry = await self.conversations_index.index_entry(conv.id)
        title = display_title(entry.subject or "" if entry is not None else "")
        if entry is not None and entry.correspondent:
            return title, entry.correspondent
        return title, await correspondent_name(self.directory, conv.started_by)

    @staticmethod
    def _summary(e: IndexEntry) -> ConversationSummary:
        name = e.correspondent or e.started_by.partition("@")[0].replace(".", " ").title()
        return ConversationSummary(e.id, display_title(e.subject or ""), name, e.unread,
                                   e.total, e.updated_at, e.closed)

    async def conversations(self, account: AccountInfo, *, query: str = "", page: int = 1
                            ) -> tuple[list[ConversationSummary], int]:
        """One page of the patient's conversations (newest first) and the number of pages.

        Read from the inbox index: one query for the page, whatever the size of the mailbox
        (a search unseals the titles and names of all the patient's conversations, and reads
        the bodies of the most recent messages).
        """
        index = self.conversations_index
        if query:
            folded = _fold(query)
            body_hits = await self.body_matches(account, query)
            found = [c for c in map(self._summary, await index.index_all(account.id))
                     if c.id in body_hits or folded in _fold(f"{c.title} {c.correspondent}")]
            pages = max(1, -(-len(found) // PER_PAGE))
            page = min(max(1, page), pages)
            return found[(page - 1) * PER_PAGE: page * PER_PAGE], pages
        pages = max(1, -(-await index.count_for_patient(account.id) // PER_PAGE))
        page = min(max(1, page), pages)
        entries = await index.index_page(account.id, (page - 1) * PER_PAGE, PER_PAGE)
        return [self._summary(e) for e in entries], pages

    async def body_matches(self, account: AccountInfo, query: str) -> set[int]:
        """Ids of the conversations where a message body contains ``query`` (case and
        accents folded), among the patient's :data:`BODY_SEARCH_MESSAGES` most recent
        messages. Bodies are decrypted for this search only; nothing is kept or indexed."""
        needle = " ".join(_fold(query).split())
        if not needle:
            return set()
        hits: set[int] = set()
        for cid, m in reversed((await self._rows(account.id))[-BODY_SEARCH_MESSAGES:]):
            if cid is None or cid in hits:
                continue
            if needle in " ".join(_fold(body_text(await self.read(m))).split()):
                hits.add(cid)
        return hits

    async def conversation(self, account: AccountInfo, conversation_id: int
                           ) -> ConversationInfo | None:
        """The conversation if it belongs to this patient (else None: answer 404)."""
        conv = await self.conversations_index.get(conversation_id)
        if conv is None or conv.patient_account_id != account.id:
            return None
        return conv

    async def messages(self, account: AccountInfo, conversation_id: int
                       ) -> list[StoredMessage]:
        return [r for _, r in await self._rows(account.id, conversation_id)]

    async def message(self, account: AccountInfo, conversation_id: int, message_id: int
                      ) -> StoredMessage | None:
        for m in await self.messages(account, conversation_id):
            if m.id == message_id:
                return m
        return None

    async def read(self, message: StoredMessage) -> bytes:
        return await self.store.read_raw(message.id)

    async def rendered(self, account: AccountInfo, conversation_id: int,
                       messages: Sequence[StoredMessage], show_images: bool
                       ) -> dict[int, Rendered]:
        """message id → what the patient sees of it, for one page of a conversation.

        Rendering costs several milliseconds a message (decrypting, MIME parsing with the
        ``email`` package, sanitising), and a conversation page shows the same messages at
        every visit. Stored messages never change, so each rendering is made once and kept,
        sealed with the patient's data key like the message itself (``webmail_rendered``):
        a page then costs one query and one AES-GCM open per message, whatever the messages'
        size. A kept rendering goes with its message (cascade), is unreadable once the
        mailbox is shredded, and is made again when the renderer changes
        (:data:`webmail.render.RENDER_VERSION`).
        """
        kept = await self.webstore.renderings(account.id, [m.id for m in messages],
                                              show_images, RENDER_VERSION)
        out = {mid: rendering_from_bytes(data) for mid, data in kept.items()}
        made: dict[int, bytes] = {}
        for m in messages:
            if m.id not in out:
                out[m.id] = self._render(conversation_id, m, await self.read(m), show_images)
                data = rendering_bytes(out[m.id])
                if len(data) <= KEPT_RENDERING_MAX:
                    made[m.id] = data
        try:
            await self.webstore.put_renderings(account.id, made, show_images, RENDER_VERSION)
        except Exception:  # noqa: BLE001 - the page is right without it; made again next time
            log.warning("webmail: renderings not kept")
        return out

    @staticmethod
    def _render(conversation_id: int, m: StoredMessage, raw: bytes, show_images: bool
                ) -> Rendered:
        attachments: tuple[Attachment, ...] | None = None

        def cid_url(content_id: str) -> str | None:
            # cid: images (RFC 2392) are served from the message's own parts.
            nonlocal attachments
            if attachments is None:
                attachments = render_message(raw).attachments
            for att in attachments:
                if att.content_id == content_id and att.content_type in _INLINE_IMAGES:
                    return (f"/conversations/{conversation_id}/messages/{m.id}/pieces/"
                            f"{att.index}?inline=1")
            return None

        return render_message(raw, show_images=show_images, cid_url=cid_url)

    async def mark_read(self, account: AccountInfo, conversation_id: int,
                        messages: Sequence[StoredMessage], client: str | None) -> None:
        """Record the patient opening a page of a conversation (one row per page) and mark its
        unread inbox messages read. The rows (the read, and the flag change if any) are
        written in the flag change's transaction; a page with nothing unread changes nothing,
        and its read row is batched (within a second) rather than cost a write of its own."""
        if not messages:
            return
        origin = Origin(Channel.WEBMAIL, client)
        opened = AuditEvent(Action.MESSAGE_READ, origin, account.id, account.address, "ok",
                            {"conversation_id": conversation_id, "count": len(messages)})
        unread = [m for m in messages if m.folder == "INBOX" and not m.seen]
        if not unread:
            self.audit.append_soon(opened)
            return
        folder_id = unread[0].folder_id  # the account's one INBOX

        def events(uids: Sequence[int]) -> list[AuditEvent]:
            seen = [AuditEvent(Action.FLAGS_CHANGED, origin, account.id, account.address, "ok",
                               {"folder": "INBOX", "folder_id": folder_id, "flags": [SEEN],
                                "mode": "add", "conversation_id": conversation_id,
                                **uid_details(uids)})] if uids else []
            return [opened, *seen]

        await self.store.store_flags(folder_id, [m.uid for m in unread], [SEEN], "add",
                                     audit=AuditHook(self.audit, events), account_id=account.id)

    async def filings(self, account: AccountInfo, message_id: int) -> dict[str, str]:
        """filename → label of the attachments the dossier bridge filed (if it is installed)."""
        if self.documents is None:
            return {}
        try:
            result = await self.documents.filings_for_message(account.id, message_id)
            return {str(name): str(label) for name, label in result}
        except Exception:  # noqa: BLE001 - the mailbox must render without the bridge
            log.warning("webmail: dossier bridge filings unavailable")
            return {}

    async def pharmacies(self, account: AccountInfo) -> list[tuple[str, str]]:
        """(address, name) of the pharmacies the patient may write to first."""
        source = self.delivery.pharmacies
        if source is None:
            return []
        out = []
        for addr in sorted(await source.pharmacies_for(account.id)):
            info = await self.directory.lookup(addr)
            entry = None if info else await self.directory.national_entry(addr)
            out.append((addr, (info.name if info else None)
                        or (entry.name if entry else None) or addr))
        return out

    # -- read receipts (RFC 8098) -------------------------------------------------------

    async def send_receipts(self, account: AccountInfo, messages: Sequence[StoredMessage],
                            rendered: Mapping[int, Rendered] | None = None) -> int:
        """Send the ``displayed`` MDN of every opened message that asked for one, once.

        The patient cannot refuse (domain README 3). The system's mail sender builds, sends
        and records each receipt (once per message, even if two pages open at the same time).
        ``rendered`` (message id → its rendering, if the caller has it) saves asking for the
        messages that ask for no receipt.
        """
        sent = 0
        for m in messages:
            if m.folder != "INBOX":
                continue
            known = rendered.get(m.id) if rendered is not None else None
            if known is not None and not known.mdn_to:
                continue
            if await self.receipts.read_receipt(account, m.id):
                sent += 1
        return sent

    # -- replying -------------------------------------------------------------------------

    async def reply_refusal(self, account: AccountInfo, conversation_id: int,
                            messages: Sequence[StoredMessage]) -> str | None:
        """Why the patient may not reply here (French), or None if they may: the very rule
        :meth:`reply` enforces (the send policy's, plus a message to answer). No side effect.
        """
        decision = await self.delivery.reply_decision(account, conversation_id)
        if not decision.allowed:
            return REASON_FR.get(decision.reason, "Envoi refusé.")
        if not any(m.folder == "INBOX" for m in messages):
            return REASON_FR[Reason.PATIENT_CANNOT_START]
        return None

    # -- writing --------------------------------------------------------------------------

    def _compose(self, account: AccountInfo, display: str, to: Sequence[str], subject: str,
                 body: str, uploads: Sequence[Upload], *, in_reply_to: str = "",
                 references: Sequence[str] = ()) -> bytes:
        if len(uploads) > MAX_UPLOADS:
            raise ReplyRefused(f"Vous pouvez joindre au plus {MAX_UPLOADS} fichiers.", 400)
        if sum(len(u.data) for u in uploads) > MAX_UPLOAD_TOTAL:
            raise ReplyRefused("Les pièces jointes dépassent 20 Mo au total.", 413)
        if not body.strip() and not uploads:
            raise ReplyRefused("Le message est vide.", 400)
        msg = EmailMessage()
        msg["From"] = email.utils.formataddr((display, account.address)) if display \
            else account.address
        msg["To"] = ", ".join(to)
        msg["Subject"] = " ".join(subject.split())[:200] or "(sans objet)"
        msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
        msg["Message-ID"] = email.utils.make_msgid(domain=self.patient_domain)
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to  # RFC 5322 3.6.4
            msg["References"] = " ".join(dict.fromkeys([*references, in_reply_to]))
        msg["MIME-Version"] = "1.0"
        msg.set_content(body.replace("\r\n", "\n"))
        for u in uploads:
            ctype = u.content_type if "/" in u.content_type else (
                mimetypes.guess_type(u.filename)[0] or "application/octet-stream")
            if ctype.startswith("text/") or ctype == "message/rfc822":
                ctype = "application/octet-stream"  # keep the bytes exactly as uploaded
            maintype, _, subtype = ctype.partition("/")
            msg.add_attachment(u.data, maintype=maintype, subtype=subtype,
                               filename=u.filename)
        return msg.as_bytes(policy=email_policy.SMTP)

    async def _submit(self, account: AccountInfo, rcpts: Sequence[str], raw: bytes,
                      conversation_id: int | None) -> DeliveryReport:
        try:
            return await self.delivery.submit_as(account, rcpts, raw,
                                                   conversation_id=conversation_id,
                                                   origin=Origin(Channel.WEBMAIL))
        except PolicyDenied as exc:
            reason = exc.reason if isinstance(exc.reason, Reason) else None
            raise ReplyRefused(REASON_FR.get(reason, "Envoi refusé.") if reason
                               else "Envoi refusé.") from exc

    async def reply(self, account: AccountInfo, conversation_id: int, body: str,
                    uploads: Sequence[Upload] = ()) -> DeliveryReport:
        """Reply inside a conversation a professional started (policy-checked by delivery)."""
        conv = await self.conversation(account, conversation_id)
        if conv is None:
            raise ReplyRefused("Conversation introuvable.", 404)
        # Closed conversations, participants...: decided by the send policy in delivery,
        # the same module SMTP submission uses; shown beforehand by reply_refusal.
        messages = await self.messages(account, conversation_id)
        refusal = await self.reply_refusal(account, conversation_id, messages)
        if refusal is not None:
            raise ReplyRefused(refusal)
        last = render_message(await self.read(
            next(m for m in reversed(messages) if m.folder == "INBOX")))
        subject = last.subject
        if not subject.lower().startswith(("re:", "re :")):
            subject = f"RE: {subject}"
        display = await self.directory.display_name(account)
        raw = self._compose(account, display, sorted(conv.parties), subject, body, uploads,
                            in_reply_to=last.message_id, references=last.references)
        return await self._submit(account, sorted(conv.parties), raw, conversation_id)

    async def new_message(self, account: AccountInfo, pharmacy: str, subject: str, body: str,
                          uploads: Sequence[Upload] = ()) -> DeliveryReport:
        """A first message to an allowed pharmacy (the only kind a patient may start)."""
        # Whether this pharmacy may be written to is the send policy's decision.
        display = await self.directory.display_name(account)
        raw = self._compose(account, display, [pharmacy], subject, body, uploads)
        return await self._submit(account, [pharmacy], raw, None)


def message_headers(raw: bytes) -> EmailMessage:
    """Parsed headers of a stored message (used by tests and the API)."""
    return parse_message(raw)
