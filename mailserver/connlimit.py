"""Open connections per client address, for one listener.

Each listener (SMTP inbound, submission, submissions, IMAP, IMAPS) owns one
:class:`ConnectionLimiter`: a connection takes a slot for its client address when it is
accepted and gives it back when it ends. Over the limit the listener answers with its own
"too many connections" line and closes (Postfix ``smtpd_client_connection_count_limit``,
default 50). The table holds only addresses with open connections, so it stays as small as
the number of connected clients.
"""

from __future__ import annotations

from mailserver import metrics

__all__ = ["ConnectionLimiter", "peer_address"]


def peer_address(peername: object) -> str:
    """The address part of a socket peer name (``""`` when unknown, e.g. a Unix socket)."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return ""


class ConnectionLimiter:
    """Counts open connections per client address.

    Args:
        limit: most simultaneous connections from one address; 0 means no limit.
        protocol: the listener's protocol, for the open-connections gauge ("" = not counted).
    """

    __slots__ = ("limit", "_open", "_gauge")

    def __init__(self, limit: int, protocol: str = "") -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._gauge = metrics.CONNECTIONS_OPEN.labels(protocol) if protocol else None

    def acquire(self, address: str) -> bool:
        """Take a slot for ``address``; False (nothing taken) when it has ``limit`` already."""
        count = self._open.get(address, 0)
        if self.limit and count >= self.limit:
            return False
        self._open[address] = count + 1
        if self._gauge is not None:
            self._gauge.inc()
        return True

    def release(self, address: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        count = self._open.get(address, 0) - 1
        if self._gauge is not None and count >= 0:
            self._gauge.dec()
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def open_count(self, address: str) -> int:
        """Connections currently open from ``address``."""
        return self._open.get(address, 0)
