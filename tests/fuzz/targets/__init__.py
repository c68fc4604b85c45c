"""Fuzz targets: one module per parser, each with ``TestOneInput(data: bytes)``.

A target calls the real entry point and lets through only the exceptions that entry point
documents; anything else raised (or a hang, or unbounded memory under ``scripts/fuzz``) is a
finding. ``tests/fuzz/test_replay.py`` replays every kept input without atheris.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

TARGETS = (
    "smtp_commands", "smtp_data", "smtp", "imap", "mime", "xdm", "cda", "whitelist", "annuaire",
)


def load(name: str) -> Callable[[bytes], None]:
    """``TestOneInput`` of the target called ``name``."""
    if name not in TARGETS:
        raise KeyError(f"unknown fuzz target {name!r}; known: {', '.join(TARGETS)}")
    module = importlib.import_module(f"tests.fuzz.targets.{name}")
    fn: Callable[[bytes], None] = module.TestOneInput
    return fn
