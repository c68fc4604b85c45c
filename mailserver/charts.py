"""Charts of the profile's measures over time: accessible SVG and the data table beside it (pure).

Data in, text out: :func:`measure_chart` takes the ``mesures`` entries of ``GET /api/profile``
(see :mod:`mailserver.profile_text`), keeps one kind over a time range, and returns a pygal line
chart rendered on the server (no JavaScript: pygal's script element is removed) with a
``<title>`` and a ``<desc>`` summing it up (the root is ``role="img"`` labelled by both), and the
rows of the table a page shows beside it for screen readers (date, value, unit, source). Blood
pressure is two series, systolic and diastolic (dashed, so they differ without colour).

The SVG carries pygal's ``<style>`` element: serve it as its own ``image/svg+xml`` response
with a policy allowing inline style (as attachments are served), or inline it in a page whose
policy allows it; the webmail's default ``style-src 'self'`` would drop its colours.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pygal
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from pygal.style import Style

from mailserver.profile_text import (
    MEASURE_KINDS,
    author,
    measure_date,
    measure_kind,
    measure_label,
    measure_unit,
    number,
    short_date,
    text,
)

__all__ = ["ChartRange", "ChartSummary", "TableRow", "chart_summary", "measure_chart"]

_SVG = "http://www.w3.org/2000/svg"
_STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#212529",
    foreground_strong="#212529", foreground_subtle="#5a626c",
    colors=("#005493", "#a4262c"), opacity="1", opacity_hover="1",
    font_family="'DejaVu Sans', Arial, sans-serif", title_font_size=18, label_font_size=13,
    major_label_font_size=13, legend_font_size=14, value_font_size=13, tooltip_font_size=14,
    no_data_font_size=18, guide_stroke_color="#c9cfd6", major_guide_stroke_color="#c9cfd6",
    guide_stroke_dasharray="2,3", major_guide_stroke_dasharray="2,3", stroke_width="2.5",
    stroke_opacity="1", stroke_width_hover="2.5", stroke_opacity_hover="1",
)
_FIXED_SCALES = {"douleur": (0.0, 10.0), "saturation": (80.0, 100.0)}


class ChartRange(enum.Enum):
    """The time ranges a patient chooses from; the value is the query parameter."""

    THREE_MONTHS = "3m"
    ONE_YEAR = "1y"
    ALL = "all"

    @property
    def label(self) -> str:
        return {"3m": "3 derniers mois", "1y": "12 derniers mois", "all": "Toutes les mesures"}[
            self.value]

    def since(self, today: date) -> date | None:
        """The first day shown (the same day 3 or 12 months earlier); None for all."""
        if self is ChartRange.ALL:
            return None
        months = 3 if self is ChartRange.THREE_MONTHS else 12
        year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
        last_day = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, min(today.day, last_day))

    @classmethod
    def parse(cls, value: str | None, default: ChartRange | None = None) -> ChartRange:
        """The range a query parameter names; ``default`` (one year) for anything else."""
        try:
            return cls(value)
        except ValueError:
            return default or cls.ONE_YEAR


@dataclass(frozen=True)
class TableRow:
    """One measure as the table beside the chart shows it."""

    day: date
    date: str
    """``20/11/2026``."""
    value: str
    """``72,5``; blood pressure ``128/82``."""
    unit: str
    source: str
    """``Vous``, or the professional's or the application's name."""


@dataclass(frozen=True)
class _Point:
    day: date
    values: tuple[float, ...]
    entry: Mapping[str, Any]


def _numeric(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _points(entries: Iterable[Mapping[str, Any]], kind: str, since: date | None,
            pair: bool) -> list[_Point]:
    out: list[tuple[date, int, _Point]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or measure_kind(entry.get("kind")) != kind:
            continue
        day = measure_date(entry)
        if day is None or (since is not None and day < since):
            continue
        keys = ("systolic", "diastolic") if pair else ("value",)
        values = tuple(_numeric(entry.get(k)) for k in keys)
        if any(v is None for v in values):
            continue
        out.append((day, index, _Point(day, tuple(v for v in values if v is not None), entry)))
    return [p for _, _, p in sorted(out, key=lambda t: t[:2])]


def _source(entry: Mapping[str, Any]) -> str:
    who = author(entry)
    if who:
        return f"{who} (application)" if entry.get("added_by_kind") == "application" else who
    source = text(entry.get("source"))
    return source if source and source.lower() not in ("patient", "vous") else "Vous"


def _shown(values: tuple[float, ...]) -> str:
    return "/".join(number(int(v) if v.is_integer() else v) for v in values)


def _with_unit(value: str, unit: str) -> str:
    if not unit:
        return value
    return f"{value}{unit}" if unit.startswith("/") else f"{value} {unit}"


def _description(label: str, unit: str, points: list[_Point], pair: bool,
                 chart_range: ChartRange) -> str:
    if not points:
        return f"{label} : aucune mesure sur la période « {chart_range.label} »."
    count = f"{len(points)} mesure" + ("s" if len(points) > 1 else "")
    span = (f"le {short_date(points[0].day)}" if points[0].day == points[-1].day else
            f"du {short_date(points[0].day)} au {short_date(points[-1].day)}")
    names = ("systolique", "diastolique") if pair else ("",)
    ranges = []
    for i, name in enumerate(names):
        low = min(p.values[i] for p in points)
        high = max(p.values[i] for p in points)
        spread = (f"{_shown((low,))}" if low == high else
                  f"de {_shown((low,))} à {_shown((high,))}")
        ranges.append(f"{name} {spread}".strip())
    last = points[-1]
    return (f"{label}, {count} {span} ({chart_range.label}) : {' ; '.join(ranges)} {unit}. "
            f"Dernière valeur : {_with_unit(_shown(last.values), unit)} le "
            f"{short_date(last.day)}.").replace("  ", " ")


def _accessible(svg: str, title: str, description: str) -> str:
    """pygal's SVG without its script, with a labelled title and a description."""
    root = etree.fromstring(svg.encode("utf-8"))  # noqa: S320 - our own pygal output
    for script in root.iter(f"{{{_SVG}}}script"):
        parent = script.getparent()
        if parent is not None:
            parent.remove(script)
    chart_id = root.get("id") or "chart"
    for old in root.findall(f"{{{_SVG}}}title"):
        root.remove(old)
    title_el = etree.Element(f"{{{_SVG}}}title", id=f"{chart_id}-title")
    title_el.text = title
    desc_el = etree.Element(f"{{{_SVG}}}desc", id=f"{chart_id}-desc")
    desc_el.text = description
    root.insert(0, desc_el)
    root.insert(0, title_el)
    root.set("role", "img")
    root.set("aria-labelledby", f"{chart_id}-title {chart_id}-desc")
    return str(etree.tostring(root, encoding="unicode"))


@dataclass(frozen=True)
class ChartSummary:
    """What a page shows of a chart without drawing it: its title, the description (the
    text alternative of the image) and the table rows, oldest first."""

    title: str
    description: str
    rows: list[TableRow]


@dataclass(frozen=True)
class _Series:
    label: str
    unit: str
    pair: bool
    canonical: str
    points: list[_Point]


def _series(points: Iterable[Mapping[str, Any]], kind: str, chart_range: ChartRange,
            today: date) -> _Series:
    canonical = measure_kind(kind)
    pair = canonical == "tension"
    shown = _points(points, canonical, chart_range.since(today), pair)
    known = MEASURE_KINDS.get(canonical)
    unit = (measure_unit(shown[-1].entry) if shown else "") or (known.unit if known else "")
    return _Series(measure_label(kind), unit, pair, canonical, shown)


def _summary(series: _Series, chart_range: ChartRange) -> ChartSummary:
    label, unit = series.label, series.unit
    title = f"{label} ({unit}), {chart_range.label}" if unit else f"{label}, {chart_range.label}"
    rows = [TableRow(p.day, short_date(p.day), _shown(p.values), unit, _source(p.entry))
            for p in series.points]
    return ChartSummary(title, _description(label, unit, series.points, series.pair,
                                            chart_range), rows)


def chart_summary(points: Iterable[Mapping[str, Any]], kind: str, chart_range: ChartRange, *,
                  today: date) -> ChartSummary:
    """The title, description and table rows of :func:`measure_chart` (same arguments),
    without rendering the SVG."""
    return _summary(_series(points, kind, chart_range, today), chart_range)


def measure_chart(points: Iterable[Mapping[str, Any]], kind: str, chart_range: ChartRange, *,
                  today: date) -> tuple[str, list[TableRow]]:
    """The chart of one kind of measure over ``chart_range``, and its table rows.

    Args:
        points: measure entries (any kinds: those of ``kind`` are kept; entries without a
            date or a numeric value are left out).
        kind: the measure kind (``poids``, ``tension``...; aliases and accents tolerated).
        chart_range: how far back from ``today`` to show.
        today: the day the range ends (no clock is read here).
    Returns:
        The SVG (no XML declaration, no script) and one row per point shown, oldest first.
    """
    series = _series(points, kind, chart_range, today)
    summary = _summary(series, chart_range)
    chart = pygal.DateLine(
        title=summary.title, style=_STYLE, width=800, height=400,
        disable_xml_declaration=True, js=[], show_legend=series.pair, legend_at_bottom=True,
        show_x_guides=False, dots_size=4, x_label_rotation=30, truncate_label=-1,
        no_data_text="Aucune mesure sur cette période",
        x_value_formatter=lambda d: d.strftime("%d/%m/%Y"),
        value_formatter=lambda v: _shown((float(v),)),  # the unit is in the title
        range=_FIXED_SCALES.get(series.canonical), print_values=False,
    )
    names = ("Systolique", "Diastolique") if series.pair else (series.label,)
    for i, name in enumerate(names):
        dashed = {"stroke_style": {"dasharray": "8, 5"}} if i == 1 else {}
        chart.add(name, [(p.day, p.values[i]) for p in series.points], **dashed)
    svg = _accessible(chart.render(is_unicode=True), summary.title, summary.description)
    return svg, summary.rows
