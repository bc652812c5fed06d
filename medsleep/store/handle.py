"""One value for an open store and what every verb that works on it needs: the engine, the
archive folder beside it, the clock and who is acting (recorded on the audit chain).

The edges (CLI, server, dashboard) build it once from their settings; the library's verbs take
it whole instead of a mix of URLs, engines, clocks and timestamps::

    store = Store.open("sqlite:///medsleep.db", Path("medsleep-archive"), actor="nightly")
    report = consolidate(store, load_policy())
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from medsleep.store.defaults import DEFAULT_ARCHIVE_FOLDER, DEFAULT_DB_URL
from medsleep.store.engine import open_store
from medsleep.timefmt import wall_clock_ms

DEFAULT_ARCHIVE = Path(DEFAULT_ARCHIVE_FOLDER)
Clock = Callable[[], int]  # epoch milliseconds


@dataclass(frozen=True)
class Store:
    engine: Engine
    archive_root: Path = DEFAULT_ARCHIVE
    clock: Clock = wall_clock_ms
    actor: str = "cli"

    @classmethod
    def open(
        cls,
        url: str = DEFAULT_DB_URL,
        archive_root: Path = DEFAULT_ARCHIVE,
        *,
        clock: Clock = wall_clock_ms,
        actor: str = "cli",
    ) -> Store:
        """Open (and create or upgrade) the database at ``url``."""
        return cls(open_store(url), Path(archive_root), clock, actor)

    @property
    def url(self) -> str:
        """The database URL with its password, for worker processes that open their own."""
        return self.engine.url.render_as_string(hide_password=False)

    def now_ms(self) -> int:
        return self.clock()

    def acting_as(self, actor: str) -> Store:
        """The same store, with another actor on the audit chain (a logged-in user)."""
        return replace(self, actor=actor)

    def close(self) -> None:
        self.engine.dispose()
