"""Profile synthesis benchmark: time to render the synthesis PDF of a full profile holding
``--measures`` measures (500 by default; target under a second), and one blood-pressure
and one weight chart over all of them.

Pure functions, no server or database: the figures are the rendering cost alone (fpdf2 with
the DejaVu Sans font files parsed at each run, as the server does; pygal).

    .venv/bin/python -m bench.synthesis_bench --measures 500 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailserver.charts import ChartRange, measure_chart  # noqa: E402
from mailserver.synthesis import build_synthesis, find_unicode_font  # noqa: E402
from tests.unit.profile_fixture import PATIENT, TODAY, bulk_measures, full_profile  # noqa: E402

TARGET_SECONDS = 1.0


def _timed(runs: int, work: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measures", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    profile = full_profile()
    profile["rubrics"]["mesures"] = bulk_measures(args.measures)
    font = find_unicode_font()
    print(f"font: {font[0] if font else 'core Helvetica (DejaVu Sans not installed)'}")
    size = len(build_synthesis(profile, PATIENT, TODAY))  # warm-up (imports, font lookup)
    pdf = _timed(args.runs, lambda: build_synthesis(profile, PATIENT, TODAY))
    points = profile["rubrics"]["mesures"]
    bp = _timed(args.runs, lambda: measure_chart(points, "tension", ChartRange.ALL, today=TODAY))
    weight = _timed(args.runs, lambda: measure_chart(points, "poids", ChartRange.ALL,
                                                     today=TODAY))
    print(f"synthesis PDF, {args.measures} measures: "
          f"median {statistics.median(pdf) * 1000:.0f} ms, max {max(pdf) * 1000:.0f} ms "
          f"over {args.runs} runs ({size} bytes)")
    print(f"blood-pressure chart, all of them: median {statistics.median(bp) * 1000:.0f} ms")
    print(f"weight chart, all of them: median {statistics.median(weight) * 1000:.0f} ms")
    verdict = "under" if max(pdf) < TARGET_SECONDS else "OVER"
    print(f"synthesis {verdict} the {TARGET_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
