"""The SQL store: tables, engine, migrations, bulk helpers, and the ``Store`` value verbs take.

The names below load on first use: parse workers import the store's modules that need no SQL
(``body_codec``, ``search_tokens``, ``defaults``) without loading SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medsleep.store.lazy import lazy_names

if TYPE_CHECKING:
    from medsleep.store.defaults import DEFAULT_DB_URL
    from medsleep.store.engine import open_store, upgrade_schema
    from medsleep.store.handle import DEFAULT_ARCHIVE, Store

_HOME = {
    "DEFAULT_DB_URL": "medsleep.store.defaults",
    "open_store": "medsleep.store.engine",
    "upgrade_schema": "medsleep.store.engine",
    "DEFAULT_ARCHIVE": "medsleep.store.handle",
    "Store": "medsleep.store.handle",
}

__getattr__ = lazy_names(__name__, _HOME)

__all__ = ["DEFAULT_ARCHIVE", "DEFAULT_DB_URL", "Store", "open_store", "upgrade_schema"]
