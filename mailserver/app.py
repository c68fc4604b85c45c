"""Composition root: builds the services from a Config. Front ends receive these objects."""

from __future__ import annotations

from dataclasses import dataclass

from mailserver.config import Config
from mailserver.delivery import Delivery, Outbound, PharmacySource, TrustSpace
from mailserver.directory.passwords import Passwords
from mailserver.directory.service import Directory
from mailserver.schema import create_schema
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
    trust: TrustSpace | None = None
    """The trust space (mailserver.trust.space.TrustSpaceService unless one was passed in)."""
    queue: Outbound | None = None
    """The outbound queue (mailserver.outbound.queue.OutboundQueue unless one was passed in)."""

    async def close(self) -> None:
        await self.db.close()


async def open_services(config: Config, *, fast_passwords: bool = False,
                        trust: TrustSpace | None = None, outbound: Outbound | None = None,
                        pharmacies: PharmacySource | None = None) -> Services:
    """Open the database (creating the schema), load the master key, wire the services."""
    db = Database(config.database_url, group_commit_max=config.store.group_commit_max)
    await create_schema(db)
    ring = MasterKeyring.load(config.path(config.store.master_key_file))
    keys = KeyManager(db, ring, config.store.key_cache_size)
    events = MailboxEvents()
    store = MailStore(db, keys, LocalBlobStore(config.path(config.store.blob_dir)),
                      inline_max=config.store.inline_max, events=events)
    directory = Directory(db, store, keys, domain=config.domain,
                          patient_domain=config.patient_domain, auth=config.auth,
                          passwords=Passwords(fast=fast_passwords))
    conversations = Conversations(db, keys)
    # Conversations from before the inbox index get indexed before anything is served.
    from mailserver.inbox_index import build_index

    await build_index(store, conversations, directory)
    jobs = Jobs(db)
    if trust is None:
        trust = build_trust_space(config)
    if outbound is None:
        from mailserver.outbound.queue import OutboundQueue

        outbound = OutboundQueue(config, db, ring)
    if pharmacies is None:
        from dossier_bridge.pharmacy import DossierPharmacies

        pharmacies = DossierPharmacies(db, keys)
    delivery = Delivery(config=config, directory=directory, store=store,
                        conversations=conversations, jobs=jobs, trust=trust,
                        outbound=outbound, pharmacies=pharmacies)
    return Services(config, db, keys, store, directory, conversations, jobs, delivery, events,
                    trust=trust, queue=outbound)


def build_trust_space(config: Config) -> TrustSpace:
    """The trust space of ``config``: local trust file, national whitelist, resolver."""
    from pathlib import Path

    from mailserver.trust.resolver import DnsResolver, Resolver
    from mailserver.trust.space import TrustSpaceService, resolver_from_zone_file

    t = config.trust
    resolver: Resolver = (resolver_from_zone_file(config.path(Path(t.static_zone_file)))
                          if t.static_zone_file else DnsResolver(timeout=t.dns_timeout))
    return TrustSpaceService(
        local_file=config.path(t.local_file),
        last_good_file=config.path(t.last_good_file),
        whitelist_file=config.path(Path(t.whitelist_file)) if t.whitelist_file else None,
        whitelist_url=t.whitelist_url,
        refresh_seconds=t.refresh_seconds,
        resolver=resolver,
    )
