"""Errors of the document store (subclasses of the project's tree, see mailserver.errors).

::

    MssanteError
    ├── AccessDenied          the viewer may not do this to this document / record
    └── StoreError
        └── NotFound
            └── DocumentNotFound
"""

from __future__ import annotations

from mailserver.errors import MssanteError, NotFound

__all__ = ["AccessDenied", "DocumentNotFound"]


class AccessDenied(MssanteError):
    """The viewer may not read, change or delete this document (or this record)."""


class DocumentNotFound(NotFound):
    """No such document in this patient's record (also raised for documents the viewer may not
    see, so their existence does not leak)."""
