"""Background workers run by the server: durable jobs (document filing, patient notifications)
and, when configured, the outbound queue.

A package that handles a job kind registers ``kind → handler`` in :data:`HANDLERS` through
:func:`register`; the worker loop claims due jobs of the registered kinds and retries failures
with back-off. Jobs of kinds nobody handles stay pending (nothing is lost).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mailserver.app import Services
from mailserver.store.jobs import JobInfo

__all__ = ["register", "start", "HANDLERS", "run_due_jobs", "JOB_MODULES"]

log = logging.getLogger(__name__)

Handler = Callable[[Services, JobInfo], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}

JOB_MODULES = ("dossier_bridge.jobs", "webmail.jobs")
"""Modules that register job handlers when imported (missing ones are skipped)."""

Starter = Callable[[Services, asyncio.Event], list[asyncio.Task[Any]]]
STARTERS: list[Starter] = []
"""Other long-running workers (e.g. the outbound queue) add a starter here."""

STARTER_MODULES = ("mailserver.outbound.worker",)


def register(kind: str, handler: Handler) -> None:
    HANDLERS[kind] = handler


def _load_modules() -> None:
    for name in (*JOB_MODULES, *STARTER_MODULES):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise


async def run_due_jobs(services: Services, limit: int = 20) -> int:
    """Claim and run due jobs once; returns how many ran."""
    if not HANDLERS:
        return 0
    jobs = await services.jobs.claim(list(HANDLERS), limit)
    for job in jobs:
        handler = HANDLERS[job.kind]
        try:
            await handler(services, job)
        except Exception as exc:  # noqa: BLE001 - the job is retried
            log.warning("jobs: %s failed (attempt %d): %s", job.kind, job.attempts,
                        type(exc).__name__)
            await services.jobs.retry(job.id, f"{type(exc).__name__}: {exc}", job.attempts)
        else:
            await services.jobs.done(job.id)
    return len(jobs)


async def _job_loop(services: Services, stop: asyncio.Event, interval: float) -> None:
    wake = services.events.subscribe(-1)  # delivery wakes us via publish(-1)
    while not stop.is_set():
        try:
            ran = await run_due_jobs(services)
        except Exception:  # noqa: BLE001
            log.exception("jobs: worker error")
            ran = 0
        if ran:
            continue
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), interval)
        except TimeoutError:
            pass


def start(services: Services, stop: asyncio.Event, *, interval: float = 1.0
          ) -> list[asyncio.Task[Any]]:
    _load_modules()
    tasks = [asyncio.create_task(_job_loop(services, stop, interval), name="jobs")]
    for starter in STARTERS:
        tasks.extend(starter(services, stop))
    return tasks
