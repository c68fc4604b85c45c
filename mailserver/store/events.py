"""Change notifications (new mail, flag changes, expunges) for IDLE and the other sessions.

Publishing happens after commit. A subscriber gets an :class:`asyncio.Event` that is set on
every change of the account; it then re-reads the store. Writers call :meth:`changed_in`
inside their transaction: this process's subscribers are woken after the commit, and on
PostgreSQL a ``NOTIFY mssante_mailbox`` goes with the same commit (``db.notify_on_commit``)
so the other server processes wake theirs (:mod:`mailserver.store.pg_events` listens and
calls :meth:`received`). A process ignores its own notifications (they carry its token).

:attr:`MailboxEvents.complete` is true while every change of any process reaches the
subscribers (PostgreSQL with the listener connected): an IMAP session then skips its
per-command poll of the store until its event is set. It stays false on SQLite, where the
command line tools may write without telling the server.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.db import after_commit, notify_on_commit

__all__ = ["MailboxEvents", "CHANNEL"]

CHANNEL = "mssante_mailbox"
"""The PostgreSQL notification channel; the payload is ``token:account_id``."""


class MailboxEvents:
    def __init__(self) -> None:
        self._subs: dict[int, set[asyncio.Event]] = defaultdict(set)
        self.token = secrets.token_hex(6)
        #: Every change reaches the subscribers (see the module docstring).
        self.complete = False

    def subscribe(self, account_id: int) -> asyncio.Event:
        ev = asyncio.Event()
        self._subs[account_id].add(ev)
        return ev

    def unsubscribe(self, account_id: int, ev: asyncio.Event) -> None:
        subs = self._subs.get(account_id)
        if subs is not None:
            subs.discard(ev)
            if not subs:
                del self._subs[account_id]

    def publish(self, account_id: int, *, but: asyncio.Event | None = None) -> None:
        """Wake this process's subscribers of ``account_id`` (except ``but``)."""
        for ev in list(self._subs.get(account_id, ())):
            if ev is not but:
                ev.set()

    def publish_all(self) -> None:
        """Wake every subscriber (notifications may have been missed: a listener reconnect)."""
        for account_id in list(self._subs):
            self.publish(account_id)

    def changed_in(self, session: AsyncSession, account_id: int, *,
                   origin: asyncio.Event | None = None) -> None:
        """The account's mailbox changes in ``session``'s transaction: wake its subscribers
        here and in the other processes once it commits. ``origin``, the subscription of the
        IMAP session making the change, is not woken: that session knows what it changed
        (its event then tells only of the others' changes, and it skips a poll)."""
        after_commit(session, lambda: self.publish(account_id, but=origin))
        notify_on_commit(session, CHANNEL, f"{self.token}:{account_id}")

    def received(self, payload: str) -> None:
        """A notification from the channel: wake the account's subscribers here, unless this
        process sent it (they were woken at its commit)."""
        token, _, account = payload.partition(":")
        if token != self.token and account.lstrip("-").isdigit():
            self.publish(int(account))
