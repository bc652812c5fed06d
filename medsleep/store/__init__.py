"""The SQL store: tables, engine, migrations, bulk helpers, and the ``Store`` value verbs take."""

from medsleep.store.engine import DEFAULT_DB_URL, open_store, upgrade_schema
from medsleep.store.handle import DEFAULT_ARCHIVE, Store

__all__ = ["DEFAULT_ARCHIVE", "DEFAULT_DB_URL", "Store", "open_store", "upgrade_schema"]
