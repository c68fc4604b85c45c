"""The national directory extraction (``mailserver.directory.annuaire``): rows are read as the
import reads the file (UTF-8 with an optional BOM, ``|``-separated) and turned into entries.
Only ``ValidationError`` (not an extraction) is expected."""

from __future__ import annotations

import io

from mailserver.directory import annuaire
from mailserver.errors import ValidationError


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    try:
        for row in annuaire.read_rows(text, "fuzz"):
            if row is not None:
                annuaire._entry(row)
    except ValidationError:
        return
