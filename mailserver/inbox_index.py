"""The display fields of the inbox index (see ``store/conversations.py``) and building the
index of conversations that predate it.

A conversation's title is the subject of its first message; its correspondent is the name of
whoever started it, as the directory knows it (patients see names, not necessarily addresses).
Both are computed once, when the conversation is created (``Delivery``) or indexed here.
"""

from __future__ import annotations

import logging

from mailserver.directory.service import Directory
from mailserver.errors import KeyDestroyed, NotFound
from mailserver.headers import decode_words, parse_headers
from mailserver.store.conversations import Conversations
from mailserver.store.mailstore import MailStore

__all__ = ["correspondent_name", "build_index"]

log = logging.getLogger(__name__)


async def correspondent_name(directory: Directory, address: str) -> str:
    """The name a patient reads for ``address``: the local account's, else the national
    directory's, else the address's local part."""
    info = await directory.lookup(address)
    if info is not None and info.name:
        return info.name
    entry = await directory.national_entry(address)
    if entry is not None and entry.name:
        return entry.name
    return address.partition("@")[0].replace(".", " ").title()


async def _first_subject(store: MailStore, message_id: int | None) -> str:
    if message_id is None:
        return ""
    subject, _ = await store.read_header_fields(message_id)
    subject = subject or ""
    if "\ufffd" in subject:  # raw UTF-8 subject (RFC 6532) stored lossily: re-read it
        raw = await store.read_raw(message_id)
        subject = decode_words(str(parse_headers(raw).get("Subject", ""))) or subject
    return subject


async def build_index(store: MailStore, conversations: Conversations,
                      directory: Directory, batch: int = 500) -> int:
    """Index every conversation that is not indexed yet (a database from before the index);
    returns how many. Run at start-up, before the front ends listen."""
    done = 0
    names: dict[str, str] = {}
    while rows := await conversations.unindexed(batch):
        entries = []
        for cid, account_id, started_by, first in rows:
            if started_by not in names:
                names[started_by] = await correspondent_name(directory, started_by)
            try:
                subject = await _first_subject(store, first)
            except (KeyDestroyed, NotFound):  # a shredded mailbox: nothing to show
                subject = ""
            entries.append((cid, account_id, subject, names[started_by]))
        await conversations.set_index(entries)
        done += len(entries)
    if done:
        log.info("store: inbox index built for %d conversations", done)
    return done
