"""Registers the ``file_documents`` job handler with the server's workers.

Delivery enqueues the job in the same transaction as the patient's copy of every
professional→patient message; the worker runs it after the commit and retries failures with
back-off (mailserver.workers), so filing never loses or delays the message.
"""

from __future__ import annotations

from dossier_bridge.filing import Filer
from mailserver import workers
from mailserver.app import Services
from mailserver.delivery import JOB_FILE_DOCUMENTS
from mailserver.store.jobs import JobInfo

__all__ = ["file_documents"]


async def file_documents(services: Services, job: JobInfo) -> None:
    """Job handler: file the documents of message ``job.message_id`` for ``job.account_id``."""
    if job.account_id is None or job.message_id is None:
        return  # malformed job: nothing to do, do not retry forever
    await Filer(services).run(job.account_id, job.message_id)


workers.register(JOB_FILE_DOCUMENTS, file_documents)
