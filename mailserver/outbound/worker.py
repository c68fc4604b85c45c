"""Background tasks of the trust space: outbound queue workers and the whitelist refresher.

Importing this module appends :func:`start` to :data:`mailserver.workers.STARTERS`. It starts
``[queue] workers`` delivery loops (each with its own per-domain connection pool) and, when a
national whitelist source is configured, the refresh loop of the trust space. Reports (DSN) go
to the sender through :meth:`mailserver.delivery.Delivery.deliver` with a null envelope sender,
so a local sender gets them in INBOX and a remote one through the queue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mailserver import workers
from mailserver.app import Services
from mailserver.errors import StoreError
from mailserver.outbound.courier import Courier
from mailserver.outbound.queue import OutboundQueue
from mailserver.policy import Kind, Party
from mailserver.trust.space import TrustSpaceService

__all__ = ["start", "report_sink", "run_queue_once"]

log = logging.getLogger(__name__)


def report_sink(services: Services) -> Any:
    """A :data:`mailserver.outbound.courier.ReportSink` delivering through ``services``."""

    async def send(rcpt: str, raw: bytes) -> None:
        # RFC 5321 6.1 / RFC 3464: reports travel with a null reverse-path.
        report = await services.delivery.deliver(Party("", Kind.REMOTE_PROFESSIONAL), "",
                                                 [rcpt], raw)
        if not report.accepted:
            log.warning("outbound: delivery report refused: %s",
                        report.outcomes[0].decision.reason.name if report.outcomes else "-")

    return send


def _parts(services: Services) -> tuple[OutboundQueue, TrustSpaceService] | None:
    queue = services.delivery.outbound
    trust = services.delivery.trust
    if isinstance(queue, OutboundQueue) and isinstance(trust, TrustSpaceService):
        return queue, trust
    return None


async def run_queue_once(services: Services, courier: Courier | None = None) -> int:
    """Claim and attempt due messages once (tests, ``mssante queue flush``); returns how many."""
    parts = _parts(services)
    if parts is None:
        return 0
    queue, trust = parts
    own = courier is None
    courier = courier or Courier(services.config, queue, trust, report_sink(services))
    try:
        claimed = await queue.claim(limit=50)
        for c in claimed:
            await courier.deliver(c)
        return len(claimed)
    finally:
        if own:
            await courier.pool.close()


async def _worker(services: Services, queue: OutboundQueue, trust: TrustSpaceService,
                  stop: asyncio.Event, index: int) -> None:
    courier = Courier(services.config, queue, trust, report_sink(services))
    poll = services.config.queue.poll_seconds
    try:
        while not stop.is_set():
            queue.wakeup.clear()
            try:
                claimed = await queue.claim(limit=5)
            except StoreError as exc:  # e.g. SQLite locked by another process: try again later
                log.warning("outbound: claim failed (worker %d): %s", index, exc)
                claimed = []
            except Exception:  # noqa: BLE001 - database hiccup: try again later
                log.exception("outbound: claim failed (worker %d)", index)
                claimed = []
            for c in claimed:
                try:
                    await courier.deliver(c)
                except Exception:  # noqa: BLE001 - the lease expires and it is retried
                    log.exception("outbound: delivery crashed (worker %d)", index)
            if claimed:
                continue
            await courier.pool.close_idle()
            try:
                await asyncio.wait_for(queue.wakeup.wait(), poll)
            except TimeoutError:
                pass
    finally:
        await courier.pool.close()


def start(services: Services, stop: asyncio.Event) -> list[asyncio.Task[Any]]:
    """Start the queue workers and the whitelist refresher (see the module docstring)."""
    parts = _parts(services)
    if parts is None:
        return []
    queue, trust = parts
    tasks = [asyncio.create_task(_worker(services, queue, trust, stop, i),
                                 name=f"outbound-{i}")
             for i in range(max(1, services.config.queue.workers))]
    tasks.append(asyncio.create_task(trust.run(stop), name="trust-refresh"))
    return tasks


if start not in workers.STARTERS:
    workers.STARTERS.append(start)
