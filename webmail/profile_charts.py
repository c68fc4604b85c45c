"""Charts of the patient's measures on the "Mesures" page: one per kind entered (blood
pressure as one chart of two series), over 3 months, 1 year or everything (``?periode=3m``,
``1y``, ``all``: plain links, no JavaScript).

Why an image of its own (``GET /profil/mesures/<kind>.svg?periode=...``) and not SVG inlined in
the page: pygal's SVG carries an inline ``<style>`` element, which the pages' policy
(``style-src 'self'``) rightly drops. The SVG response gets its own policy instead
(``default-src 'none'; style-src 'unsafe-inline'``: styles, nothing else, no script, no fetch;
loaded through ``<img>``, an SVG never runs scripts anyway). The page keeps the accessibility:
the ``<img>``'s ``alt`` is the chart's description (what an image's title/desc would give, but
read by every screen reader, which an ``<img>``'s inner SVG title is not), and the data table
beside it lists every point with its date, value, unit and source. The SVG itself keeps
``role="img"`` with its ``<title>``/``<desc>`` for whoever opens it alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from mailserver.charts import ChartRange, chart_summary, measure_chart
from mailserver.lifecycle import paris_date
from mailserver.profile import MEASURE_KINDS, MEASURES
from webmail.profile import entry_json, profile_of
from webmail.web import R_ATTACHMENT_CSP, current_account

__all__ = ["setup", "charts_view", "RANGES", "SVG_CSP"]

RANGES: tuple[tuple[ChartRange, str], ...] = (
    (ChartRange.THREE_MONTHS, "3 mois"), (ChartRange.ONE_YEAR, "1 an"), (ChartRange.ALL, "Tout"))
"""The choices offered, with their link text."""

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _today() -> date:
    return paris_date(datetime.now(UTC))


def _range(request: web.Request) -> ChartRange:
    return ChartRange.parse(request.query.get("periode"))


def charts_view(request: web.Request, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The "Évolution de vos mesures" section: the chosen range, the range links, and one chart
    per kind the patient has entered at least once (title, alt text, image URL, rows)."""
    chosen = _range(request)
    today = _today()
    present = {str(e.get("kind")) for e in entries}
    charts = []
    for kind in MEASURES:
        if not kind.entered or kind.slug not in present:
            continue
        summary = chart_summary(entries, kind.slug, chosen, today=today)
        charts.append({"kind": kind.slug, "label": kind.label, "title": summary.title,
                       "alt": summary.description, "rows": summary.rows,
                       "pair": kind.pair,
                       "src": f"/profil/mesures/{kind.slug}.svg?periode={chosen.value}"})
    return {"range": chosen, "ranges": [(r.value, text, r is chosen) for r, text in RANGES],
            "charts": charts}


async def chart_svg(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    kind = MEASURE_KINDS.get(request.match_info["kind"])
    if kind is None or not kind.entered:
        raise web.HTTPNotFound()
    rows = await profile_of(request).entries(account, "mesures")
    svg, _ = measure_chart([entry_json(r) for r in rows], kind.slug, _range(request),
                           today=_today())
    request[R_ATTACHMENT_CSP] = SVG_CSP
    return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get("/profil/mesures/{kind:[a-z-]+}.svg", chart_svg)
