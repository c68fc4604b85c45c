"""The audit events of the directory: login attempts and lifecycle transitions (built here,
appended by ``Directory`` through its :class:`~mailserver.store.audit.AuditTrail`)."""

from __future__ import annotations

import hashlib

from mailserver.store.audit import Action, AuditEvent, Channel, Origin
from mailserver.store.models import Account

__all__ = ["login_event", "transition_event"]


def login_event(a: Account | None, ident: str, *, channel: Channel, client: str | None,
                mechanism: str, outcome: str) -> AuditEvent:
    """A login attempt. An unknown name is kept only when it looks like an address (a password
    typed in the name field must not be stored): else its SHA-256 prefix."""
    ok = outcome == "ok"
    address = a.address if a is not None else (ident if "@" in ident else None)
    details: dict[str, object] = {"mechanism": mechanism}
    if a is None and address is None:
        details["kind"] = "unknown-name:" + hashlib.sha256(ident.encode()).hexdigest()[:16]
    return AuditEvent(Action.LOGIN if ok else Action.LOGIN_FAILED,
                      Origin(channel, client), a.id if a is not None else None, address,
                      outcome, details)


def transition_event(a: Account, *, event: str, from_state: str, to_state: str,
                     actor: str) -> AuditEvent:
    """A lifecycle transition (also kept in ``account_transitions``)."""
    channel = Channel.SYSTEM if actor.startswith("system") else (
        Channel.WEBMAIL if actor == "patient" else Channel.CLI)
    return AuditEvent(Action.ACCOUNT_STATE, Origin(channel, actor=actor), a.id, a.address,
                      "ok", {"event": event, "from_state": from_state, "to_state": to_state})
