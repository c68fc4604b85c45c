"""The IMAP receiver (``mailserver.imap.parser.Receiver``): framing, literals and every verb.

The first two bytes choose the line limit and the read size; the driver's answers to IDLE,
AUTHENTICATE and STARTTLS are played as ``imap/server.py`` plays them. ``feed`` is documented
never to raise; the octets it holds stay bounded by its limits.
"""

from __future__ import annotations

from mailserver.imap import commands as c
from mailserver.imap.parser import ContinuationLine, Event, Receiver


def _drive(receiver: Receiver, events: list[Event]) -> None:
    while receiver.paused and events:
        last = events[-1]
        if isinstance(last, c.Idle):
            events = receiver.start_idle(last.tag)
        elif isinstance(last, c.Authenticate):
            events = receiver.expect_continuation()
        elif isinstance(last, c.StartTLS):
            receiver.discard_buffered()
            events = []
        elif isinstance(last, ContinuationLine):
            events = receiver.resume()
        else:
            events = receiver.resume()


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    if len(data) < 2:
        return
    max_line = 32 + data[0] * 4
    chunk = data[1] % 97 + 1
    receiver = Receiver(max_line=max_line, max_literal=4 * max_line)
    body = data[2:]
    for pos in range(0, len(body), chunk):
        _drive(receiver, receiver.feed(body[pos:pos + chunk]))
        assert receiver.buffered <= receiver.max_command + 2 * max_line, "unbounded buffer"
