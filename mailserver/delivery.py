"""Accepted message → store (+ conversation bookkeeping, background jobs, outbound queue).

Every front end (SMTP submission, inbound SMTP, the webmail) goes through :class:`Delivery`,
in four steps: **gather** (headers, the patient's conversation and pharmacies, each recipient
looked up once: at RCPT time the SMTP handler keeps what :meth:`Delivery.check_rcpt` looked up
and DATA reuses it), **decide** (:func:`mailserver.policy.decide`, once per recipient, pure),
**plan** (seal every copy and lay out the rows: a frozen :class:`mailserver.store.plan.DeliveryPlan`
with the local copies, the sender's Sent copy, conversation rows, jobs and the outbound queue
entry) and **commit** (the store writes the plan in ONE group-committed transaction). The caller
acknowledges (SMTP 250) only after ``deliver`` returned, i.e. after that commit.

Conversations: a professional's message to a patient starts a conversation, or continues the
one its In-Reply-To/References point at. The patient may answer the professional, or the
trust-space addresses of the message's Reply-To instead. ``X-MSS-MES: FIN`` closes the
conversation; a subject of exactly ``[FIN]`` closes every conversation of that patient with that
professional (``policy.closing`` decides, for the webmail's display too).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailserver.config import Config
from mailserver.delivery_audit import MessageFacts, delivery_events, refusal_event
from mailserver.directory.service import AccountInfo, Directory
from mailserver.errors import PolicyDenied
from mailserver.headers import decode_words, header_block, parse_headers
from mailserver.identifiers import is_valid_address, normalise_address
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
from mailserver.store.audit import AuditEvent, AuditTrail, Channel, Origin
from mailserver.store.conversations import Conversations
from mailserver.store.jobs import Jobs
from mailserver.store.mailstore import AppendResult, MailStore, Prepared
from mailserver.store.plan import (
    Committed,
    ConversationRows,
    DeliveryCommits,
    DeliveryPlan,
    NewConversation,
    PlannedCopy,
    PlannedSent,
)
from mailserver.store.queue import OutboundEntry

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
    "Looked",
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

_SYSTEM_ORIGIN = Origin(Channel.SYSTEM)


class Outbound(Protocol):
    """The durable outbound queue for remote recipients."""

    async def prepare(self, raw: bytes, mail_from: str, rcpts: Sequence[str],
                      options: dict[str, object]) -> OutboundEntry:
        """Sign and seal ``raw`` for ``rcpts``; the delivery transaction adds the entry."""
        ...


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


Looked = tuple[Party, AccountInfo | None]
"""A recipient as gathered once: its policy party and, for a local mailbox, its account."""


@dataclass(frozen=True)
class _Gathered:
    """Everything delivery looks up before deciding (each party and conversation once)."""

    headers: HeaderFacts
    facts: Facts
    conversation_id: int | None
    """A patient sender's conversation (given, or found from In-Reply-To/References)."""


@dataclass(frozen=True)
class _Accepted:
    """The recipients the policy allowed: local accounts and remote addresses."""

    local: tuple[tuple[str, AccountInfo], ...]
    remote: tuple[str, ...]
    accounts: Mapping[str, AccountInfo] = field(default_factory=dict)
    """Every local recipient's account, refused ones too (for the audit trail)."""


class Delivery:
    def __init__(self, *, config: Config, directory: Directory, store: MailStore,
                 conversations: Conversations, jobs: Jobs, trust: TrustSpace | None = None,
                 audit: AuditTrail, outbound: Outbound | None = None,
                 pharmacies: PharmacySource | None = None,
                 stored: Callable[[Sequence[tuple[int, int]]], None] | None = None) -> None:
        self.config = config
        self.directory = directory
        self.store = store
        self.conversations = conversations
        self.jobs = jobs
        self.trust: TrustSpace = trust or NoTrustSpace()
        self.outbound = outbound
        self.pharmacies = pharmacies
        #: Told ``(account id, message id)`` of each professional's copy after the commit
        #: (the root's IMAP summary warmer: mail clients' summaries built off the SMTP path).
        self.stored = stored
        self.audit = audit
        self.commits = DeliveryCommits(store, audit)

    # -- classification ---------------------------------------------------------------------

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower() in self.config.local_domains

    async def classify(self, address: str) -> Party:
        """Who is behind an address, as the policy sees it."""
        return (await self.look_up(address))[0]

    async def look_up(self, address: str) -> Looked:
        """The policy party of an address and, for a local mailbox, its account."""
        addr = normalise_address(address)
        if not is_valid_address(addr):
            return Party(addr, Kind.INVALID), None
        domain = addr.rpartition("@")[2]
        if self.is_local_domain(domain):
            info = await self.directory.lookup(addr)
            if info is None:
                return Party(addr, Kind.UNKNOWN_LOCAL), None
            kind = Kind.PATIENT if info.is_patient else Kind.PROFESSIONAL
            # Not cached with the lookup: a shred by any process is seen within GENERATION_RECHECK.
            shredded = await self.store.keys.is_destroyed(info.id)
            return Party(addr, kind, info.status, info.bal_type, shredded), info
        if self.trust.is_trusted_domain(domain):
            kind = (Kind.REMOTE_PATIENT if domain.startswith("patient.")
                    else Kind.REMOTE_PROFESSIONAL)
            return Party(addr, kind), None
        return Party(addr, Kind.OUTSIDE), None

    async def party_of(self, account: AccountInfo) -> Party:
        kind = Kind.PATIENT if account.is_patient else Kind.PROFESSIONAL
        return Party(account.address, kind, account.status, account.bal_type,
                     await self.store.keys.is_destroyed(account.id))

    async def _patient_facts(self, sender: Party, refs: Sequence[str],
                             conversation_id: int | None) -> tuple[Facts, int | None]:
        """(the policy facts of a patient's message, the conversation it belongs to)."""
        patient = await self.directory.lookup(sender.address)
        if patient is None:
            return Facts(), conversation_id
        pharmacies = (await self.pharmacies.pharmacies_for(patient.id)
                      if self.pharmacies else frozenset())
        conv_id = conversation_id
        if conv_id is None and refs:
            conv_id = await self._thread_of(patient.id, refs)
        conv = await self.conversations.get(conv_id) if conv_id is not None else None
        if conv is None or conv.patient_account_id != patient.id:
            return Facts(pharmacies=pharmacies), conv_id
        return Facts(conversation=ConversationFacts(conv.closed, conv.parties,
                                                    patient.address),
                     pharmacies=pharmacies), conv_id

    async def _thread_of(self, account_id: int, refs: Sequence[str]) -> int | None:
        """The conversation of the first referenced message of this mailbox that has one."""
        for m in await self.store.find_by_message_id(account_id, refs):
            if m.conversation_id is not None:
                return m.conversation_id
        return None

    async def check_rcpt(self, sender: Party, rcpt: str, *, size: int = 0,
                         conversation_id: int | None = None,
                         known: dict[str, Looked] | None = None,
                         origin: Origin | None = None,
                         authenticated: AccountInfo | None = None) -> Decision:
        """The policy answer for one recipient before the message body is known (RCPT TO).

        ``known`` (the SMTP transaction's) keeps the recipient as looked up, for DATA. A
        refusal is recorded in the audit trail when ``origin`` is given."""
        looked = await self.look_up(rcpt)
        if known is not None:
            known[looked[0].address] = looked
        decision = await self._check_rcpt(sender, looked, size, conversation_id)
        if origin is not None and not decision.allowed:
            self.audit.append_soon(refusal_event(
                origin, MessageFacts(sender, authenticated, None, size), looked[0].address,
                decision, looked[1]))
        return decision

    async def _check_rcpt(self, sender: Party, looked: Looked, size: int,
                          conversation_id: int | None) -> Decision:
        recipient = looked[0]
        if sender.kind is Kind.PATIENT:
            facts, _ = await self._patient_facts(sender, (), conversation_id)
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

    # -- delivery: gather -> decide -> plan -> commit ----------------------------------------

    async def deliver(self, sender: Party, mail_from: str, rcpts: Sequence[str], raw: bytes, *,
                      authenticated: AccountInfo | None = None,
                      conversation_id: int | None = None,
                      options: dict[str, object] | None = None,
                      receipt: bool = False,
                      headers: HeaderFacts | None = None,
                      known: Mapping[str, Looked] | None = None,
                      origin: Origin = _SYSTEM_ORIGIN,
                      also: Sequence[AuditEvent] = ()) -> DeliveryReport:
        """Decide for every recipient, then durably store everything in one transaction.

        ``known``: recipients already looked up at RCPT time (not looked up again).
        ``also``: audit events of the caller's action (a receipt), recorded with the
        delivery's own in its transaction when a recipient is accepted.
        Raises StoreError when the commit fails (nothing is then stored: answer 451).
        """
        gathered = await self._gather(sender, raw, headers, conversation_id, receipt)
        report, accepted = await self._decide(sender, rcpts, gathered.facts, known or {})
        events = delivery_events(
            origin, MessageFacts(sender, authenticated, gathered.headers.message_id, len(raw)),
            [(o.address, o.decision) for o in report.outcomes], accepted.accounts)
        if not accepted.local and not accepted.remote:
            await self.audit.append(*events)
            return report
        plan = await self._plan(sender, mail_from, raw, gathered, accepted,
                                authenticated=authenticated, options=options or {})
        plan = dataclasses.replace(plan, audit=(*events, *also))
        done = await self.commits.commit(plan)
        if self.stored is not None:
            self.stored(_client_copies(done, accepted, authenticated))
        report.outcomes = [RcptOutcome(o.address, o.decision, done.results.get(o.address))
                           for o in report.outcomes]
        report.sent_copy = done.sent
        report.conversation_ids = done.conversation_ids
        return report

    async def _gather(self, sender: Party, raw: bytes, headers: HeaderFacts | None,
                      conversation_id: int | None, receipt: bool) -> _Gathered:
        hf = headers or parse_header_facts(raw)
        if sender.kind is not Kind.PATIENT:
            return _Gathered(hf, Facts(size=len(raw), receipt=receipt), None)
        pf, conv_id = await self._patient_facts(sender, hf.references, conversation_id)
        return _Gathered(hf, Facts(size=len(raw), conversation=pf.conversation,
                                   pharmacies=pf.pharmacies, receipt=receipt), conv_id)

    async def _decide(self, sender: Party, rcpts: Sequence[str], facts: Facts,
                      known: Mapping[str, Looked]) -> tuple[DeliveryReport, _Accepted]:
        """One decision per distinct recipient."""
        report = DeliveryReport()
        local: list[tuple[str, AccountInfo]] = []
        remote: list[str] = []
        accounts: dict[str, AccountInfo] = {}
        for addr in dict.fromkeys(normalise_address(r) for r in rcpts):
            recipient, account = known.get(addr) or await self.look_up(addr)
            decision = decide(sender, recipient, facts)
            if decision.allowed and recipient.kind not in (Kind.PATIENT, Kind.PROFESSIONAL) \
                    and self.outbound is None:
                # Without an outbound queue nothing remote can be accepted.
                decision = Decision(False, Reason.OUTSIDE_TRUST_SPACE)
            report.outcomes.append(RcptOutcome(addr, decision))
            if account is not None:
                accounts[addr] = account
            if not decision.allowed:
                log.info("policy: deny reason=%s", decision.reason.name)
            elif account is not None:
                local.append((addr, account))
            else:
                remote.append(addr)
        return report, _Accepted(tuple(local), tuple(remote), accounts)

    async def _plan(self, sender: Party, mail_from: str, raw: bytes, gathered: _Gathered,
                    accepted: _Accepted, *, authenticated: AccountInfo | None,
                    options: dict[str, object]) -> DeliveryPlan:
        """Seal every copy and lay out every row; no write happens here."""
        hf = gathered.headers
        # A large message stored for several accounts is sealed and written once (its content
        # key is sealed per account), not once per copy.
        copies = len(accepted.local) + (1 if authenticated is not None else 0)
        shared = (await self.store.share(raw)
                  if copies > 1 and len(raw) > self.store.inline_max else None)

        async def prepare(account_id: int) -> Prepared:
            return await self.store.prepare(
                account_id, raw, subject=hf.subject, from_display=hf.from_display,
                message_id=hf.message_id, sent_date=hf.date, shared=shared)

        professional = hf.from_address or normalise_address(mail_from)
        sender_is_pro = sender.kind in (Kind.PROFESSIONAL, Kind.REMOTE_PROFESSIONAL)
        planned = []
        for rcpt, account in accepted.local:
            rows = (await self._conversation_rows(account, hf, professional)
                    if account.is_patient and sender_is_pro else None)
            jobs = ((JOB_NOTIFY_PATIENT, *((JOB_FILE_DOCUMENTS,) if sender_is_pro else ()))
                    if account.is_patient else ())
            planned.append(PlannedCopy(rcpt, await prepare(account.id), rows, jobs))
        sent = None
        if authenticated is not None:
            sent = await self._sent_plan(sender, authenticated, gathered, accepted,
                                         await prepare(authenticated.id))
        entry = (await self.outbound.prepare(raw, mail_from, accepted.remote, dict(options))
                 if accepted.remote and self.outbound is not None else None)
        return DeliveryPlan(tuple(planned), sent, entry)

    async def _conversation_rows(self, patient: AccountInfo, hf: HeaderFacts,
                                 professional: str) -> ConversationRows:
        """A professional's message to a local patient: the conversation it continues or
        opens, and what it closes."""
        conv_id = await self._thread_of(patient.id, hf.references) if hf.references else None
        closes = closing(hf.subject, hf.fin, answers_thread=conv_id is not None)
        if conv_id is None and closes is Closing.ALL_WITH_SENDER:
            # A bare "[FIN]" closes the earlier threads with this professional; it belongs
            # to the latest of them rather than opening a new one.
            conv_id = await self._latest_conversation_with(patient.id, professional)
        new = None
        if conv_id is None:
            # The inbox index of a new conversation: its title and correspondent, sealed with
            # the patient's key in the transaction (read before it).
            new = NewConversation(patient.id, professional, await self.store.keys.get(patient.id),
                                  hf.subject,
                                  await correspondent_name(self.directory, professional))
        parties = [a for a in hf.reply_to if self._is_trust_space_pro(a)] or [professional]
        return ConversationRows(patient.id, conv_id, new, professional, tuple(parties),
                                close=closes is not Closing.NONE,
                                close_all_with_sender=closes is Closing.ALL_WITH_SENDER)

    async def _sent_plan(self, sender: Party, author: AccountInfo, gathered: _Gathered,
                         accepted: _Accepted, prepared: Prepared) -> PlannedSent:
        """The Sent copy; a patient's first message to a pharmacy (the one exception to
        "patients only reply") opens a conversation with that pharmacy, so its answer and the
        patient's follow-ups thread as usual."""
        targets = frozenset([rcpt for rcpt, _ in accepted.local] + list(accepted.remote))
        conv_id = gathered.conversation_id if sender.kind is Kind.PATIENT else None
        if (conv_id is None and sender.kind is Kind.PATIENT and not gathered.facts.receipt
                and targets and targets <= gathered.facts.pharmacies):
            first = sorted(targets)[0]
            new = NewConversation(author.id, first, await self.store.keys.get(author.id),
                                  gathered.headers.subject,
                                  await correspondent_name(self.directory, first))
            return PlannedSent(prepared, None, new, tuple(sorted(targets)))
        return PlannedSent(prepared, conv_id)

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
                        conversation_id: int | None = None,
                        origin: Origin = _SYSTEM_ORIGIN) -> DeliveryReport:
        """Deliver a message composed by a local account (webmail); raises PolicyDenied if
        no recipient is allowed."""
        sender = await self.party_of(account)
        report = await self.deliver(sender, account.address, rcpts, raw,
                                    authenticated=account, conversation_id=conversation_id,
                                    origin=origin)
        if not report.accepted:
            reason = report.outcomes[0].decision.reason if report.outcomes else Reason.ALLOWED
            raise PolicyDenied(reason, report.outcomes[0].decision.text
                               if report.outcomes else "no recipient")
        return report


def _client_copies(done: Committed, accepted: _Accepted, author: AccountInfo | None
                   ) -> list[tuple[int, int]]:
    """(account id, message id) of the copies mail clients will read (professionals')."""
    out = [(a.id, done.results[rcpt].message_id) for rcpt, a in accepted.local
           if not a.is_patient and rcpt in done.results]
    if author is not None and not author.is_patient and done.sent is not None:
        out.append((author.id, done.sent.message_id))
    return out
