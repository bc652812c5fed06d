"""Where a store is when nobody says: the embedded SQLite file and the archive folder beside
it. No imports, so the CLI can name them without loading SQLAlchemy."""

DEFAULT_DB_URL = "sqlite:///medsleep.db"
DEFAULT_ARCHIVE_FOLDER = "medsleep-archive"
