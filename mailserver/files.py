"""Durable file writes.

:func:`atomic_write` is the one way this code base writes a file that must survive a crash
whole or not at all (keys, blobs, trust lists, DKIM state): the data goes to a temporary file
in the same directory, is written fully and fsync'd, the temporary file is renamed over (or
linked to) the target, and the directory is fsync'd so the new name is durable too. A reader
sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename or new file in it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` atomically and durably.

    The parent directory must exist. On failure the temporary file is removed and the target
    is left as it was.

    Args:
        path: the file to create or replace.
        data: its whole content.
        mode: permission bits of the new file (default: owner read/write only).
        exclusive: never replace an existing file; raise :class:`FileExistsError` instead.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            if mode != 0o600:  # mkstemp creates the file 0600
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)  # atomic, and fails if the target exists
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
