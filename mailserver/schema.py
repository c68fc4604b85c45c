"""Every module that defines tables, imported so ``create_all`` creates them all.

This lives above the store (the store imports no protocol or web package): the composition root
and the command line call :func:`create_schema`. A package adding tables adds its module here.
"""

from __future__ import annotations

from types import ModuleType

from dossier_bridge import models as dossier_models
from dossier_bridge import profile_models
from mailserver.store import (
    archives,
    attempts,
    lifecycle,
    models,
    prepared_exports,
    queue,
    sent,
    vanished,
)
from mailserver.store.db import Database
from webmail import models as webmail_models

__all__ = ["create_schema", "load_models", "TABLE_MODULES"]

TABLE_MODULES: tuple[ModuleType, ...] = (models, attempts, queue, sent, lifecycle, archives,
                                         prepared_exports, vanished,
                                         dossier_models, profile_models, webmail_models)
"""Every module defining tables (each registers its tables on the shared ``Base``)."""


def load_models() -> None:
    """Register every table on the shared declarative ``Base`` (imported above: the modules
    listed in :data:`TABLE_MODULES`)."""


async def create_schema(db: Database) -> frozenset[str]:
    """Create missing tables (and additive columns) for every package; returns the names of
    the tables just created."""
    load_models()
    return await db.create_schema()
