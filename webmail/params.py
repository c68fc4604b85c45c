"""Path and query parameters checked at the edge, before any lookup.

Identifiers in URLs are database keys (``Integer`` columns: 32-bit on PostgreSQL, and SQLite
refuses integers beyond 64 bits with an ``OverflowError``) or part numbers. Anything that is not
a plain decimal number in range is answered like an unknown object (404), so no malformed value
ever reaches the store. A malformed page number is a bad request (400); a page beyond the last
shows the last one (the views echo the page actually shown).
"""

from __future__ import annotations

import re

from aiohttp import web

__all__ = ["path_id", "page_param", "MAX_ID", "MAX_PAGE"]

MAX_ID = 2**31 - 1
"""The largest key an ``Integer`` column holds on every supported database."""
MAX_PAGE = 100_000
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII only: int() would also take "٣", "+3", "1_0"


def _number(value: str, low: int, high: int) -> int | None:
    if not _DIGITS.fullmatch(value):
        return None
    n = int(value)
    return n if low <= n <= high else None


def path_id(request: web.Request, name: str, *, low: int = 1) -> int:
    """The path parameter ``name`` as a key in ``low..MAX_ID``; 404 otherwise."""
    n = _number(request.match_info.get(name, ""), low, MAX_ID)
    if n is None:
        raise web.HTTPNotFound()
    return n


def page_param(request: web.Request) -> int:
    """The ``page`` query parameter (default 1) in ``1..MAX_PAGE``; 400 otherwise."""
    value = request.query.get("page")
    if value is None:
        return 1
    n = _number(value, 1, MAX_PAGE)
    if n is None:
        raise web.HTTPBadRequest()
    return n
