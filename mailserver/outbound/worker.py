"""The outbound queue workers: ``[queue] workers`` delivery loops, each with its own per-domain
connection pool (:class:`mailserver.outbound.courier.Courier`).

The runtime starts them (:func:`start_queue_workers`) with the queue, the trust space and the
report sink (the system mail's ``report``: DSNs go to the sender with a null envelope sender, so
a local sender gets them in INBOX and a remote one through the queue).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mailserver.config import Config
from mailserver.errors import StoreError
from mailserver.outbound.courier import Courier, ReportSink
from mailserver.outbound.queue import ClaimedMessage, OutboundQueue
from mailserver.trust.space import TrustSpaceService

__all__ = ["start_queue_workers"]

log = logging.getLogger(__name__)


async def _heartbeat(queue: OutboundQueue, tag: str, every: float) -> None:
    """Renew the lease of claim ``tag`` every ``every`` seconds until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            if await queue.renew(tag) == 0:
                return
        except Exception:  # noqa: BLE001 - a missed beat: the next one may work
            log.warning("outbound: lease renewal failed")


async def _deliver(courier: Courier, queue: OutboundQueue, claimed: list[ClaimedMessage],
                   index: int) -> None:
    """Deliver one claim's messages while a heartbeat keeps their lease."""
    every = max(0.05, queue.config.queue.lease_seconds / 3)
    beats = {c.tag for c in claimed if c.tag}
    tasks = [asyncio.create_task(_heartbeat(queue, tag, every)) for tag in beats]
    try:
        for c in claimed:
            try:
                await courier.deliver(c)
            except Exception:  # noqa: BLE001 - the lease expires and it is retried
                log.exception("outbound: delivery crashed (worker %d)", index)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _worker(courier: Courier, queue: OutboundQueue, poll: float, stop: asyncio.Event,
                  index: int) -> None:
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
            if claimed:
                await _deliver(courier, queue, claimed, index)
                continue
            await courier.pool.close_idle()
            try:
                await asyncio.wait_for(queue.wakeup.wait(), poll)
            except TimeoutError:
                pass
    finally:
        await courier.pool.close()


def start_queue_workers(config: Config, queue: OutboundQueue, trust: TrustSpaceService,
                        reports: ReportSink, stop: asyncio.Event) -> list[asyncio.Task[Any]]:
    """Start ``[queue] workers`` delivery loops until ``stop``."""
    return [asyncio.create_task(
                _worker(Courier(config, queue, trust, reports), queue,
                        config.queue.poll_seconds, stop, i), name=f"outbound-{i}")
            for i in range(max(1, config.queue.workers))]
