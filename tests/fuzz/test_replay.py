"""Replay every kept fuzz input (corpus and past crashes) through its target, without atheris.

A crash file is an input that once raised, hung or blew up memory; replaying it guards the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS, load

HERE = Path(__file__).resolve().parent


def _inputs(target: str) -> list[Path]:
    dirs = (HERE / "corpus" / target, HERE / "crashes" / target)
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir()
                  if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("target", TARGETS)
def test_replay(target: str) -> None:
    test_one_input = load(target)
    inputs = _inputs(target)
    assert inputs, f"no corpus for {target}"
    for path in inputs:
        try:
            test_one_input(path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{path.relative_to(HERE)}: {type(exc).__name__}") from exc
