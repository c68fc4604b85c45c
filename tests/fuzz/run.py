"""Run atheris (libFuzzer) on one target: ``python -m tests.fuzz.run TARGET [libFuzzer args]``.

Driven by ``scripts/fuzz``, which gives the corpus directories, the time and the crash
directory. ``FUZZ_ARGV0`` names an executable that runs this module for the same target:
libFuzzer starts it again for ``-merge=1`` (it re-runs ``argv[0]``).
"""

from __future__ import annotations

import logging
import os
import sys

import atheris

MAX_LEN = {"mime": 16384, "xdm": 16384, "cda": 8192, "whitelist": 8192}
# Code whose coverage guides the fuzzer: ours and the parsers below it (not SQLAlchemy & co.,
# whose instrumentation costs a minute of start-up for nothing).
INSTRUMENTED = [
    "tests.fuzz", "mailserver", "attachments", "aiosmtpd", "email", "zipfile", "csv", "xml",
    "defusedxml", "pypdf", "gzip", "base64", "quopri", "encodings",
]


def main(argv: list[str]) -> None:
    target, flags = argv[0], argv[1:]
    logging.disable(logging.CRITICAL)  # the servers' warnings about each bad input
    with atheris.instrument_imports(include=INSTRUMENTED):
        from tests.fuzz.targets import load

        test_one_input = load(target)
    if not any(f.startswith("-max_len=") for f in flags):
        flags.insert(0, f"-max_len={MAX_LEN.get(target, 4096)}")
    atheris.Setup([os.environ.get("FUZZ_ARGV0", sys.argv[0]), *flags], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
