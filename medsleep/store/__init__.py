"""The SQL store: tables, engine, migrations and bulk helpers."""

from medsleep.store.engine import DEFAULT_DB_URL, open_store, upgrade_schema

__all__ = ["DEFAULT_DB_URL", "open_store", "upgrade_schema"]
