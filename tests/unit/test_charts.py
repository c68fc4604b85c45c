"""Measure charts: accessible SVG (title, desc, no script), one point per measure in range,
the range filter, blood pressure as two series, the table rows beside the chart."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from lxml import etree

from mailserver.charts import ChartRange, TableRow, measure_chart
from tests.unit.profile_fixture import TODAY, bulk_measures

NS = {"svg": "http://www.w3.org/2000/svg"}


def _weight(day: str, value: float, by: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": day, "kind": "poids", "value": value, "unit": "kg", "date": day,
            "added_by": by, "added_at": day, **extra}


def _bp(day: str, systolic: int, diastolic: int, by: str | None = None) -> dict[str, Any]:
    return {"id": day, "kind": "tension", "systolic": systolic, "diastolic": diastolic,
            "unit": "mmHg", "date": day, "added_by": by, "added_at": day}


# TODAY is 2026-11-20: three months back is 2026-08-20, a year back 2025-11-20.
WEIGHTS = [
    _weight("2024-01-10", 80.0),
    _weight("2025-11-19", 78.2),  # a day too old for one year
    _weight("2025-11-20", 77.9),  # first day of one year
    _weight("2026-08-19", 75.0),  # a day too old for three months
    _weight("2026-08-20", 74.4, "Dr Jérôme Martin"),  # first day of three months
    _weight("2026-11-20", 72.5, source="Balance connectée"),
    _bp("2026-10-01", 130, 85),  # another kind: never in the weight chart
    {"kind": "poids", "value": 70, "date": None},  # no date: left out
    {"kind": "poids", "value": "lourd", "date": "2026-11-01"},  # not a number: left out
]


def _svg(svg: str) -> Any:
    assert not svg.startswith("<?xml")
    return etree.fromstring(svg.encode())  # noqa: S320 - our own output


def _dots(root: Any, serie: int) -> int:
    return len(root.xpath(f"//svg:g[contains(@class, 'serie-{serie} ')]//svg:circle"
                          f"[contains(@class, 'dot')]", namespaces=NS))


@pytest.mark.parametrize("chart_range,days", [
    (ChartRange.THREE_MONTHS, ["2026-08-20", "2026-11-20"]),
    (ChartRange.ONE_YEAR, ["2025-11-20", "2026-08-19", "2026-08-20", "2026-11-20"]),
    (ChartRange.ALL, ["2024-01-10", "2025-11-19", "2025-11-20", "2026-08-19", "2026-08-20",
                      "2026-11-20"]),
], ids=["3-months", "1-year", "all"])
def test_one_point_per_measure_in_range(chart_range: ChartRange, days: list[str]) -> None:
    svg, rows = measure_chart(WEIGHTS, "poids", chart_range, today=TODAY)
    root = _svg(svg)
    assert _dots(root, 0) == len(days)
    assert _dots(root, 1) == 0
    assert [r.day.isoformat() for r in rows] == days


def test_svg_has_a_labelled_title_and_description_and_no_script() -> None:
    svg, _ = measure_chart(WEIGHTS, "poids", ChartRange.THREE_MONTHS, today=TODAY)
    root = _svg(svg)
    assert root.get("role") == "img"
    title, desc = root[0], root[1]
    assert title.tag == "{http://www.w3.org/2000/svg}title"
    assert title.text == "Poids (kg), 3 derniers mois"
    assert desc.tag == "{http://www.w3.org/2000/svg}desc"
    assert desc.text == ("Poids, 2 mesures du 20/08/2026 au 20/11/2026 (3 derniers mois) : "
                         "de 72,5 à 74,4 kg. Dernière valeur : 72,5 kg le 20/11/2026.")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert root.xpath("//svg:script", namespaces=NS) == []
    assert len(root.xpath("/svg:svg/svg:title", namespaces=NS)) == 1


def test_table_rows_date_value_unit_source() -> None:
    _, rows = measure_chart(WEIGHTS, "Poids", ChartRange.THREE_MONTHS, today=TODAY)
    assert rows == [
        TableRow(date(2026, 8, 20), "20/08/2026", "74,4", "kg", "Dr Jérôme Martin"),
        TableRow(date(2026, 11, 20), "20/11/2026", "72,5", "kg", "Balance connectée"),
    ]
    _, rows = measure_chart(WEIGHTS, "poids", ChartRange.ONE_YEAR, today=TODAY)
    assert rows[0].source == "Vous"


def test_blood_pressure_is_two_series() -> None:
    points = [_bp(f"2026-11-{d:02d}", 120 + d, 80 + d % 5) for d in range(10, 15)]
    svg, rows = measure_chart(points, "tension", ChartRange.THREE_MONTHS, today=TODAY)
    root = _svg(svg)
    assert _dots(root, 0) == 5 and _dots(root, 1) == 5
    legends = root.xpath("//svg:g[contains(@class, 'legend')]/svg:text/text()", namespaces=NS)
    assert legends == ["Systolique", "Diastolique"]
    assert [r.value for r in rows] == ["130/80", "131/81", "132/82", "133/83", "134/84"]
    assert {r.unit for r in rows} == {"mmHg"}
    desc = root[1].text
    assert "systolique de 130 à 134 ; diastolique de 80 à 84 mmHg" in desc
    assert "Dernière valeur : 134/84 mmHg le 14/11/2026" in desc


def test_no_measure_in_range_says_so() -> None:
    svg, rows = measure_chart(WEIGHTS, "douleur", ChartRange.ALL, today=TODAY)
    assert rows == []
    root = _svg(svg)
    assert root[1].text == "Niveau de douleur : aucune mesure sur la période « Toutes les " \
                           "mesures »."
    assert "Aucune mesure sur cette période" in svg


def test_five_hundred_measures() -> None:
    svg, rows = measure_chart(bulk_measures(500), "tension", ChartRange.ALL, today=TODAY)
    assert len(rows) == 50 and _dots(_svg(svg), 1) == 50


@pytest.mark.parametrize("today,chart_range,since", [
    (date(2026, 11, 20), ChartRange.THREE_MONTHS, date(2026, 8, 20)),
    (date(2026, 2, 10), ChartRange.THREE_MONTHS, date(2025, 11, 10)),
    (date(2026, 5, 31), ChartRange.THREE_MONTHS, date(2026, 2, 28)),
    (date(2028, 2, 29), ChartRange.ONE_YEAR, date(2027, 2, 28)),
    (date(2026, 11, 20), ChartRange.ALL, None),
], ids=["plain", "across-new-year", "month-end", "leap-day", "all"])
def test_range_start(today: date, chart_range: ChartRange, since: date | None) -> None:
    assert chart_range.since(today) == since


@pytest.mark.parametrize("value,expected", [
    ("3m", ChartRange.THREE_MONTHS), ("1y", ChartRange.ONE_YEAR), ("all", ChartRange.ALL),
    (None, ChartRange.ONE_YEAR), ("10y", ChartRange.ONE_YEAR),
])
def test_range_from_query_parameter(value: str | None, expected: ChartRange) -> None:
    assert ChartRange.parse(value) is expected


def test_source_as_the_api_gives_it() -> None:
    """``GET /api/profile`` names the patient ``patient`` (kind ``patient``): shown "Vous"; an
    application is named as one."""
    entries = [
        {**_weight("2026-11-01", 72.0), "added_by": "patient", "added_by_kind": "patient"},
        {**_weight("2026-11-02", 72.4), "added_by": "Dr Claire Martin",
         "added_by_kind": "professional"},
        {**_weight("2026-11-03", 72.1), "added_by": "Balance Santé",
         "added_by_kind": "application"},
    ]
    _, rows = measure_chart(entries, "poids", ChartRange.ALL, today=TODAY)
    assert [r.source for r in rows] == ["Vous", "Dr Claire Martin", "Balance Santé (application)"]


def test_summary_agrees_with_the_chart() -> None:
    from mailserver.charts import chart_summary

    svg, rows = measure_chart(WEIGHTS, "poids", ChartRange.ONE_YEAR, today=TODAY)
    summary = chart_summary(WEIGHTS, "poids", ChartRange.ONE_YEAR, today=TODAY)
    root = etree.fromstring(svg.encode())
    assert summary.rows == rows
    assert root.find("svg:title", NS).text == summary.title
    assert root.find("svg:desc", NS).text == summary.description
