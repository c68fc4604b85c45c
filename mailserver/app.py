"""Composition root: builds the services from a Config. Front ends receive these objects."""

from __future__ import annotations

from dataclasses import dataclass

from mailserver.config import Config
from mailserver.delivery import Delivery, Outbound, PharmacySource, TrustSpace
from mailserver.directory.passwords import Passwords
from mailserver.directory.service import Directory
from mailserver.store.blobs import LocalBlobStore
from mailserver.store.conversations import Conversations
from mailserver.store.crypto import MasterKeyring
from mailserver.store.db import Database
from mailserver.store.events import MailboxEvents
from mailserver.store.jobs import Jobs
from mailserver.store.keys import KeyManager
from mailserver.store.mailstore import MailStore

__all__ = ["Services", "open_services"]


@dataclass
class Services:
    config: Config
    db: Database
    keys: KeyManager
    store: MailStore
    directory: Directory
    conversations: Conversations
    jobs: Jobs
    delivery: Delivery
    events: MailboxEvents

    async def close(self) -> None:
        await self.db.close()


async def open_services(config: Config, *, fast_passwords: bool = False,
                        trust: TrustSpace | None = None, outbound: Outbound | None = None,
                        pharmacies: PharmacySource | None = None) -> Services:
    """Open the database (creating the schema), load the master key, wire the services."""
    db = Database(config.database_url, group_commit_max=config.store.group_commit_max)
    await db.create_schema()
    ring = MasterKeyring.load(config.path(config.store.master_key_file))
    keys = KeyManager(db, ring, config.store.key_cache_size)
    events = MailboxEvents()
    store = MailStore(db, keys, LocalBlobStore(config.path(config.store.blob_dir)),
                      inline_max=config.store.inline_max, events=events)
    directory = Directory(db, store, keys, domain=config.domain,
                          patient_domain=config.patient_domain, auth=config.auth,
                          passwords=Passwords(fast=fast_passwords))
    conversations = Conversations(db)
    jobs = Jobs(db)
    delivery = Delivery(config=config, directory=directory, store=store,
                        conversations=conversations, jobs=jobs, trust=trust,
                        outbound=outbound, pharmacies=pharmacies)
    return Services(config, db, keys, store, directory, conversations, jobs, delivery, events)
