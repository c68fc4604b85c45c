"""Accepted message → store (+ conversation bookkeeping, background jobs, outbound queue).

Every front end (SMTP submission, inbound SMTP, the webmail) goes through :class:`Delivery`:
it classifies addresses into policy parties, asks :func:`mailserver.policy.decide`, and stores
all local copies, the sender's Sent copy, the jobs and the outbound queue entry of one message in
ONE group-committed transaction. The caller acknowledges (SMTP 250) only after ``deliver``
returned, i.e. after that commit.

Conversations: a professional's message to a patient starts a conversation, or continues the
one its In-Reply-To/References point at. The patient may answer the professional, or the
trust-space addresses of the message's Reply-To instead. ``X-MSS-MES: FIN`` closes the
conversation; a subject of exactly ``[FIN]`` closes every conversation of that patient with that
professional (``policy.closing`` decides, for the webmail's display too).
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.config import Config
from mailserver.directory.identifiers import is_valid_address, normalise_address
from mailserver.directory.service import AccountInfo, Directory
from mailserver.errors import PolicyDenied
from mailserver.headers import decode_words, header_block, parse_headers
from mailserver.inbox_index import correspondent_name
from mailserver.policy import (
    Closing,
    ConversationFacts,
    Decision,
    Facts,
    Kind,
    Party,
    Reason,
    can_reply,
    closing,
    decide,
)
from mailserver.store.conversations import Conversations
from mailserver.store.jobs import Jobs
from mailserver.store.mailstore import AppendResult, MailStore, Prepared

__all__ = [
    "Delivery",
    "TrustSpace",
    "Outbound",
    "PharmacySource",
    "NoTrustSpace",
    "RcptOutcome",
    "DeliveryReport",
    "HeaderFacts",
    "parse_header_facts",
    "header_block",
    "JOB_FILE_DOCUMENTS",
    "JOB_NOTIFY_PATIENT",
]

log = logging.getLogger(__name__)

JOB_FILE_DOCUMENTS = "file_documents"
JOB_NOTIFY_PATIENT = "notify_patient"
_MSGID = re.compile(r"<[^<>\s]+>")


class TrustSpace(Protocol):
    """Which remote domains belong to the trust space (issue: operator trust list)."""

    def is_trusted_domain(self, domain: str) -> bool: ...


class NoTrustSpace:
    """No remote operator is trusted: mail stays inside this server."""

    def is_trusted_domain(self, domain: str) -> bool:
        return False


class Outbound(Protocol):
    """The durable outbound queue for remote recipients."""

    async def prepare(self, raw: bytes) -> object: ...

    def enqueue_in(self, session: AsyncSession, prepared: object, mail_from: str,
                   rcpts: Sequence[str], options: dict[str, object]) -> None: ...


class PharmacySource(Protocol):
    """Pharmacies a patient may write to first (the dossier bridge knows dispensations)."""

    async def pharmacies_for(self, patient_account_id: int) -> frozenset[str]: ...


@dataclass(frozen=True)
class HeaderFacts:
    subject: str
    from_display: str
    from_address: str
    message_id: str
    references: tuple[str, ...]
    reply_to: tuple[str, ...]
    fin: bool
    date: datetime | None
    mdn_to: str


def _addresses(value: str | None) -> list[str]:
    if not value:
        return []
    return [normalise_address(a) for _, a in email.utils.getaddresses([value]) if a]


def parse_header_facts(raw: bytes) -> HeaderFacts:
    """Read the headers delivery needs. Never raises on malformed headers.

    Uses the fast ``compat32`` header parser on the header block only (the ``default`` policy
    costs close to a millisecond per message, a third of the SMTP acceptance budget).
    """
    try:
        msg = parse_headers(raw)

        def get(name: str) -> str:
            v = msg.get(name)
            return v if isinstance(v, str) else ("" if v is None else str(v))

        frm = get("From")
        pairs = email.utils.getaddresses([frm]) if frm else []
        _from_name, from_addr = pairs[0] if pairs else ("", "")
        refs = _MSGID.findall(get("In-Reply-To")) + _MSGID.findall(get("References"))
        date = None
        if get("Date"):
            try:
                date = email.utils.parsedate_to_datetime(get("Date"))
            except (TypeError, ValueError, IndexError):
                date = None
        msgid = _MSGID.findall(get("Message-ID"))
        return HeaderFacts(
            subject=decode_words(get("Subject")),
            from_display=decode_words(frm),
            from_address=normalise_address(from_addr) if from_addr else "",
            message_id=msgid[0] if msgid else "",
            references=tuple(dict.fromkeys(refs)),
            reply_to=tuple(_addresses(get("Reply-To"))),
            fin=get("X-MSS-MES").strip().upper() == "FIN",
            date=date,
            mdn_to=get("Disposition-Notification-To"),
        )
    except Exception:  # noqa: BLE001 - parsing must never fail delivery
        return HeaderFacts("", "", "", "", (), (), False, None, "")


@dataclass(frozen=True)
class RcptOutcome:
    address: str
    decision: Decision
    result: AppendResult | None = None


@dataclass
class DeliveryReport:
    outcomes: list[RcptOutcome] = field(default_factory=list)
    sent_copy: AppendResult | None = None
    conversation_ids: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> list[str]:
        return [o.address for o in self.outcomes if o.decision.allowed]


@dataclass
class _LocalTarget:
    rcpt: str
    account: AccountInfo
    prepared: Prepared | None = None
    conversation_id: int | None = None
    new_conversation: bool = False
    closing: Closing = Closing.NONE


class Delivery:
    def __init__(self, *, config: Config, directory: Directory, store: MailStore,
                 conversations: Conversations, jobs: Jobs, trust: TrustSpace | None = None,
                 outbound: Outbound | None = None,
                 pharmacies: PharmacySource | None = None) -> None:
        self.config = config
        self.directory = directory
        self.store = store
        self.conversations = conversations
        self.jobs = jobs
        self.trust: TrustSpace = trust or NoTrustSpace()
        self.outbound = outbound
        self.pharmacies = pharmacies

    # -- classification ---------------------------------------------------------------------

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower() in self.config.local_domains

    async def classify(self, address: str) -> Party:
        """Who is behind an address, as the policy sees it."""
        addr = normalise_address(address)
        if not is_valid_address(addr):
            return Party(addr, Kind.INVALID)
        domain = addr.rpartition("@")[2]
        if self.is_local_domain(domain):
            info = await self.directory.lookup(addr)
            if info is None:
                return Party(addr, Kind.UNKNOWN_LOCAL)
            kind = Kind.PATIENT if info.is_patient else Kind.PROFESSIONAL
            # Read from the database each time: another process may have shredded it.
            shredded = await self.store.keys.is_destroyed(info.id)
            return Party(addr, kind, info.status, info.bal_type, shredded)
        if self.trust.is_trusted_domain(domain):
            kind = (Kind.REMOTE_PATIENT if domain.startswith("patient.")
                    else Kind.REMOTE_PROFESSIONAL)
            return Party(addr, kind)
        return Party(addr, Kind.OUTSIDE)

    async def party_of(self, account: AccountInfo) -> Party:
        kind = Kind.PATIENT if account.is_patient else Kind.PROFESSIONAL
        return Party(account.address, kind, account.status, account.bal_type,
                     await self.store.keys.is_destroyed(account.id))

    async def _patient_facts(self, sender: Party, refs: Sequence[str],
                             conversation_id: int | None) -> Facts:
        patient = await self.directory.lookup(sender.address)
        if patient is None:
            return Facts()
        pharmacies = (await self.pharmacies.pharmacies_for(patient.id)
                      if self.pharmacies else frozenset())
        conv_id = conversation_id
        if conv_id is None and refs:
            for m in await self.store.find_by_message_id(patient.id, refs):
                if m.conversation_id is not None:
                    conv_id = m.conversation_id
                    break
        conv = await self.conversations.get(conv_id) if conv_id is not None else None
        if conv is None or conv.patient_account_id != patient.id:
            return Facts(pharmacies=pharmacies)
        return Facts(conversation=ConversationFacts(conv.closed, conv.parties,
                                                    patient.address),
                     pharmacies=pharmacies)

    async def check_rcpt(self, sender: Party, rcpt: str, *, size: int = 0,
                         conversation_id: int | None = None) -> Decision:
        """The policy answer for one recipient before the message body is known (RCPT TO)."""
        recipient = await self.classify(rcpt)
        if sender.kind is Kind.PATIENT:
            facts = await self._patient_facts(sender, (), conversation_id)
            if facts.conversation is None and conversation_id is None:
                # Replies are matched on In-Reply-To at DATA time; only refuse what can
                # never be allowed now.
                d = decide(sender, recipient, Facts(size=size, pharmacies=facts.pharmacies))
                if d.reason in (Reason.PATIENT_CANNOT_START,):
                    return Decision(True, Reason.ALLOWED)
                return d
            facts = Facts(size=size, conversation=facts.conversation,
                          pharmacies=facts.pharmacies)
        else:
            facts = Facts(size=size)
        decision = decide(sender, recipient, facts)
        if not decision.allowed:
            log.info("policy: deny reason=%s", decision.reason.name)
        return decision

    # -- delivery ---------------------------------------------------------------------------

    async def deliver(self, sender: Party, mail_from: str, rcpts: Sequence[str], raw: bytes, *,
                      authenticated: AccountInfo | None = None,
                      conversation_id: int | None = None,
                      options: dict[str, object] | None = None,
                      receipt: bool = False,
                      headers: HeaderFacts | None = None) -> DeliveryReport:
        """Decide for every recipient, then durably store everything in one transaction.

        Raises StoreError when the commit fails (nothing is then stored: answer 451).
        """
        hf = headers or parse_header_facts(raw)
        report = DeliveryReport()
        facts = Facts(size=len(raw), receipt=receipt)
        if sender.kind is Kind.PATIENT:
            pf = await self._patient_facts(sender, hf.references, conversation_id)
            facts = Facts(size=len(raw), conversation=pf.conversation,
                          pharmacies=pf.pharmacies, receipt=receipt)
        local: list[_LocalTarget] = []
        remote: list[str] = []
        seen: set[str] = set()
        for rcpt in rcpts:
            addr = normalise_address(rcpt)
            if addr in seen:
                continue
            seen.add(addr)
            recipient = await self.classify(addr)
            decision = decide(sender, recipient, facts)
            report.outcomes.append(RcptOutcome(addr, decision))
            if not decision.allowed:
                log.info("policy: deny reason=%s", decision.reason.name)
                continue
            if recipient.kind in (Kind.PATIENT, Kind.PROFESSIONAL):
                account = await self.directory.lookup(addr)
                assert account is not None
                local.append(_LocalTarget(addr, account))
            else:
                remote.append(addr)
        if not local and not remote:
            return report
        if remote and self.outbound is None:
            # Without an outbound queue nothing remote can be accepted.
            report.outcomes = [
                RcptOutcome(o.address, Decision(False, Reason.OUTSIDE_TRUST_SPACE))
                if o.address in remote else o for o in report.outcomes]
            remote = []
            if not local:
                return report

        professional = hf.from_address or normalise_address(mail_from)
        # Conversation bookkeeping needs reads before the write transaction.
        sender_is_pro = sender.kind in (Kind.PROFESSIONAL, Kind.REMOTE_PROFESSIONAL)
        for t in local:
            if t.account.is_patient and sender_is_pro:
                conv_id = None
                if hf.references:
                    for m in await self.store.find_by_message_id(t.account.id, hf.references):
                        if m.conversation_id is not None:
                            conv_id = m.conversation_id
                            break
                t.closing = closing(hf.subject, hf.fin, answers_thread=conv_id is not None)
                if conv_id is None and t.closing is Closing.ALL_WITH_SENDER:
                    # A bare "[FIN]" closes the earlier threads with this professional; it
                    # belongs to the latest of them rather than opening a new one.
                    conv_id = await self._latest_conversation_with(t.account.id, professional)
                t.conversation_id = conv_id
                t.new_conversation = conv_id is None
            elif t.account.is_patient:
                # A remote patient or a pharmacy-initiated thread: no conversation bookkeeping.
                t.conversation_id = None

        patient_conv: int | None = None
        if sender.kind is Kind.PATIENT:
            if conversation_id is not None:
                patient_conv = conversation_id
            elif hf.references and authenticated is not None:
                for m in await self.store.find_by_message_id(authenticated.id, hf.references):
                    if m.conversation_id is not None:
                        patient_conv = m.conversation_id
                        break

        # A large message stored for several accounts is sealed and written once (its content
        # key is sealed per account), not once per copy.
        copies = len(local) + (1 if authenticated is not None else 0)
        shared = (await self.store.share(raw)
                  if copies > 1 and len(raw) > self.store.inline_max else None)
        for t in local:
            t.prepared = await self.store.prepare(
                t.account.id, raw, subject=hf.subject, from_display=hf.from_display,
                message_id=hf.message_id, sent_date=hf.date, shared=shared)
        sent_prepared: Prepared | None = None
        if authenticated is not None:
            sent_prepared = await self.store.prepare(
                authenticated.id, raw, subject=hf.subject, from_display=hf.from_display,
                message_id=hf.message_id, sent_date=hf.date, shared=shared)
        outbound_prepared = await self.outbound.prepare(raw) if (remote and self.outbound) else None
        accepted_targets = frozenset([t.rcpt for t in local] + remote)
        correspondents = [a for a in hf.reply_to if self._is_trust_space_pro(a)] or [professional]
        # The inbox index of a new conversation: its title and correspondent, sealed with the
        # patient's key in the transaction (read before it).
        index_keys: dict[int, bytes] = {}
        starter = professional
        if (patient_conv is None and sender.kind is Kind.PATIENT and authenticated is not None
                and not receipt and accepted_targets
                and accepted_targets <= facts.pharmacies):
            starter = sorted(accepted_targets)[0]  # a first message to a pharmacy
            index_keys[authenticated.id] = await self.store.keys.get(authenticated.id)
        for t in local:
            if t.new_conversation:
                index_keys[t.account.id] = await self.store.keys.get(t.account.id)
        starter_name = await correspondent_name(self.directory, starter) if index_keys else ""

        async def op(s: AsyncSession) -> DeliveryReport:
            results: dict[str, AppendResult] = {}
            for t in local:
                assert t.prepared is not None
                if t.account.is_patient and sender_is_pro:
                    if t.conversation_id is None:
                        t.conversation_id = await Conversations.create_in(
                            s, t.account.id, professional, key=index_keys[t.account.id],
                            subject=hf.subject, correspondent=starter_name)
                    if t.closing is Closing.ALL_WITH_SENDER:
                        await Conversations.close_all_with_in(s, t.account.id, professional)
                    await Conversations.add_parties_in(s, t.conversation_id, correspondents,
                                                       professional)
                    await Conversations.touch_in(s, t.conversation_id,
                                                 close=t.closing is not Closing.NONE)
                    report.conversation_ids[t.rcpt] = t.conversation_id
                res = await self.store.append_in(s, t.prepared, "INBOX",
                                                 conversation_id=t.conversation_id)
                results[t.rcpt] = res
                if t.account.is_patient:
                    Jobs.enqueue_in(s, JOB_NOTIFY_PATIENT, account_id=t.account.id,
                                    message_id=res.message_id)
                    if sender_is_pro:
                        Jobs.enqueue_in(s, JOB_FILE_DOCUMENTS, account_id=t.account.id,
                                        message_id=res.message_id)
            if remote and self.outbound is not None:
                self.outbound.enqueue_in(s, outbound_prepared, mail_from, remote,
                                         dict(options or {}))
            nonlocal patient_conv
            if (patient_conv is None and sender.kind is Kind.PATIENT and authenticated is not None
                    and not receipt and accepted_targets
                    and accepted_targets <= facts.pharmacies):
                # A patient writing first to a pharmacy (the one exception to "patients only
                # reply"): the message opens a conversation with that pharmacy, so its answer
                # and the patient's follow-ups thread as usual.
                first = sorted(accepted_targets)[0]
                patient_conv = await Conversations.create_in(
                    s, authenticated.id, first, key=index_keys[authenticated.id],
                    subject=hf.subject, correspondent=starter_name)
                await Conversations.add_parties_in(s, patient_conv, sorted(accepted_targets),
                                                   first)
            if sent_prepared is not None:
                if patient_conv is not None:
                    await Conversations.touch_in(s, patient_conv)
                report.sent_copy = await self.store.append_in(
                    s, sent_prepared, "Sent", flags=("\\Seen",), conversation_id=patient_conv)
            report.outcomes = [RcptOutcome(o.address, o.decision, results.get(o.address))
                               for o in report.outcomes]
            return report

        return await self.store.db.write(op)

    async def _latest_conversation_with(self, patient_id: int, professional: str) -> int | None:
        for conv in await self.conversations.list_for_patient(patient_id):  # newest first
            if conv.started_by == professional or professional in conv.parties:
                return conv.id
        return None

    def _is_trust_space_pro(self, address: str) -> bool:
        domain = address.rpartition("@")[2]
        if domain == self.config.patient_domain or domain.startswith("patient."):
            return False
        return self.is_local_domain(domain) or self.trust.is_trusted_domain(domain)

    async def reply_decision(self, account: AccountInfo, conversation_id: int) -> Decision:
        """May ``account`` reply in this conversation? The rule ``deliver`` enforces for a
        patient's reply (``policy.can_reply``), without side effects; professionals may."""
        sender = await self.party_of(account)
        if sender.kind is not Kind.PATIENT:
            usable = sender.status == "open" and not sender.shredded
            return Decision(usable, Reason.ALLOWED if usable else Reason.SENDER_NOT_AUTHORISED)
        conv = await self.conversations.get(conversation_id)
        facts = (ConversationFacts(conv.closed, conv.parties, account.address)
                 if conv is not None and conv.patient_account_id == account.id else None)
        return can_reply(sender, facts)

    async def submit_as(self, account: AccountInfo, rcpts: Sequence[str], raw: bytes, *,
                        conversation_id: int | None = None) -> DeliveryReport:
        """Deliver a message composed by a local account (webmail); raises PolicyDenied if
        no recipient is allowed."""
        sender = await self.party_of(account)
        report = await self.deliver(sender, account.address, rcpts, raw,
                                    authenticated=account, conversation_id=conversation_id)
        if not report.accepted:
            reason = report.outcomes[0].decision.reason if report.outcomes else Reason.ALLOWED
            raise PolicyDenied(reason, report.outcomes[0].decision.text
                               if report.outcomes else "no recipient")
        return report
