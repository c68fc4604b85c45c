"""In-process change notifications (new mail, flag changes, expunges) for IDLE and the webmail.

Publishing happens after commit (see ``db.after_commit``). A subscriber gets an
:class:`asyncio.Event` that is set on every change of the account; it then re-reads the store.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

__all__ = ["MailboxEvents"]


class MailboxEvents:
    def __init__(self) -> None:
        self._subs: dict[int, set[asyncio.Event]] = defaultdict(set)

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

    def publish(self, account_id: int) -> None:
        for ev in list(self._subs.get(account_id, ())):
            ev.set()
