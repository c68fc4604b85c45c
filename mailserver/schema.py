"""Every module that defines tables, imported so ``create_all`` creates them all.

This lives above the store (the store imports no protocol or web package): the composition root
and the command line call :func:`create_schema`. A package adding tables adds its module here.
"""

from __future__ import annotations

from mailserver.store.db import Database

__all__ = ["create_schema", "load_models"]


def load_models() -> None:
    """Register every table on the shared declarative ``Base``."""
    # Import order does not matter: every module registers its tables on the same Base.
    from dossier_bridge import models as dossier_models  # noqa: F401
    from mailserver.store import attempts, models, queue, sent  # noqa: F401
    from webmail import models as webmail_models  # noqa: F401


async def create_schema(db: Database) -> None:
    """Create missing tables (and additive columns) for every package."""
    load_models()
    await db.create_schema()
