"""Read receipts (RFC 8098 message disposition notifications) for the front ends.

A professional asks for a receipt with ``Disposition-Notification-To``. Incoming MDNs are
ordinary messages with a null envelope sender and are relayed like any other (inbound accepts
the null reverse-path from an authenticated operator; the queue carries them outbound).

:func:`send_read_receipt` is what the webmail calls when the reader opens a message *and
agrees* (or, for patients, per the domain rule: automatically): it builds the ``displayed`` MDN
(:func:`mailserver.reports.mdn.build_read_receipt`) and delivers it with a null envelope sender
(RFC 8098 2.1/3.3) through :class:`mailserver.delivery.Delivery`, so it reaches a local sender's
INBOX directly or a remote one through the queue (DKIM-signed as ``MAILER-DAEMON@<our domain>``).
Only one receipt is sent per message: the ``$MDNSent`` keyword (RFC 3503) is set on the
reader's copy, and a message already carrying it is left alone.
"""

from __future__ import annotations

import email.utils
import logging

from mailserver.app import Services
from mailserver.delivery import parse_header_facts
from mailserver.directory.identifiers import is_valid_address, normalise_address
from mailserver.directory.service import AccountInfo
from mailserver.policy import Kind, Party
from mailserver.reports.mdn import build_read_receipt

__all__ = ["MDN_SENT", "receipt_requested", "send_read_receipt"]

log = logging.getLogger(__name__)

MDN_SENT = "$MDNSent"  # RFC 3503 2


def receipt_requested(raw: bytes) -> str | None:
    """The address a read receipt should go to, or None (no or unusable request)."""
    value = parse_header_facts(raw).mdn_to
    pairs = email.utils.getaddresses([value]) if value else []
    if len(pairs) != 1:
        return None  # RFC 8098 2.1: several addresses -> ask the user; we do not send
    address = normalise_address(pairs[0][1])
    return address if is_valid_address(address) else None


async def send_read_receipt(services: Services, reader: AccountInfo, folder_id: int,
                            uid: int) -> bool:
    """Send the ``displayed`` MDN for one message the reader agreed to acknowledge.

    Args:
        services: the running services.
        reader: the account that opened the message (its address is Final-Recipient).
        folder_id: the folder holding the message.
        uid: its UID there.

    Returns:
        True if a receipt was sent now; False if none was requested, one was already sent,
        or the receipt could not be delivered (policy).
    """
    infos = [m for m in await services.store.list_messages(folder_id, uid, uid) if m.uid == uid]
    if not infos or MDN_SENT in infos[0].flags:
        return False
    raw = await services.store.read_raw(infos[0].id)
    notify_to = receipt_requested(raw)
    if notify_to is None:
        return False
    cfg = services.config
    mdn = build_read_receipt(raw, notify_to=notify_to, final_recipient=reader.address,
                             reporting_ua=f"{cfg.hostname}; mssante", our_domain=cfg.domain)
    report = await services.delivery.deliver(Party("", Kind.REMOTE_PROFESSIONAL), "",
                                             [mdn.envelope_recipient], mdn.message)
    if not report.accepted:
        log.info("mdn: receipt not deliverable reason=%s",
                 report.outcomes[0].decision.reason.name if report.outcomes else "-")
        return False
    await services.store.store_flags(folder_id, [uid], [MDN_SENT], "add")
    return True
