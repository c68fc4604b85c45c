"""The audit events of one delivery: the sender's ``message-sent`` (with every accepted
recipient), each local recipient's ``message-received``, each refused recipient's
``message-refused`` with the policy's reason. Built by ``Delivery`` and committed with the
delivery plan (one transaction); only addresses, the Message-ID's hash and the size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailserver.directory.service import AccountInfo
from mailserver.policy import Decision, Party
from mailserver.store.audit import Action, AuditEvent, Origin, message_id_hash

__all__ = ["MessageFacts", "delivery_events", "refusal_event"]


@dataclass(frozen=True)
class MessageFacts:
    sender: Party
    authenticated: AccountInfo | None
    message_id: str | None
    size: int


def _base(m: MessageFacts) -> dict[str, object]:
    details: dict[str, object] = {"from": m.sender.address, "size": m.size}
    digest = message_id_hash(m.message_id)
    if digest:
        details["message_id_sha256"] = digest
    return details


def refusal_event(origin: Origin, m: MessageFacts, rcpt: str, decision: Decision,
                  account: AccountInfo | None) -> AuditEvent:
    """A refused recipient: recorded on the local recipient's mailbox, else the sender's."""
    owner = account or m.authenticated
    return AuditEvent(Action.MESSAGE_REFUSED, origin, owner.id if owner else None,
                      owner.address if owner else rcpt, "refused",
                      {**_base(m), "to": [rcpt], "reason": decision.reason.name})


def delivery_events(origin: Origin, m: MessageFacts,
                    decisions: Sequence[tuple[str, Decision]],
                    local: Mapping[str, AccountInfo]) -> tuple[AuditEvent, ...]:
    """Every event of a delivery (see the module docstring)."""
    events: list[AuditEvent] = []
    accepted = [addr for addr, d in decisions if d.allowed]
    if m.authenticated is not None and accepted:
        events.append(AuditEvent(Action.MESSAGE_SENT, origin, m.authenticated.id,
                                 m.authenticated.address, "ok", {**_base(m), "to": accepted}))
    for addr, decision in decisions:
        account = local.get(addr)
        if not decision.allowed:
            events.append(refusal_event(origin, m, addr, decision, account))
        elif account is not None:
            events.append(AuditEvent(Action.MESSAGE_RECEIVED, origin, account.id, addr, "ok",
                                     {**_base(m), "to": [addr]}))
    return tuple(events)
