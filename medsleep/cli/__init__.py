"""The ``medsleep`` command line: parse arguments, call the library, print, pick the exit code.

Exit codes (for cron, Airflow, systemd): 0 success, 1 failure, 2 usage error, 3 ingest
finished with quarantined input, 4 another consolidation holds the lock, 5 audit chain broken.
Each command module registers its commands on ``app`` when imported.
"""

from __future__ import annotations

import logging
import os
import sys

from sqlalchemy.exc import SQLAlchemyError

from medsleep.cli import (  # noqa: F401  (each module registers its commands)
    admin,
    consolidate,
    dashboard,
    export,
    ingest,
    query,
    serve,
)
from medsleep.cli.common import EXIT_AUDIT, EXIT_FAILURE, EXIT_LOCKED, EXIT_USAGE, app
from medsleep.errors import AuditChainBrokenError, InputError, LockHeldError, MedsleepError

_EXIT_FOR: dict[type[MedsleepError], int] = {
    LockHeldError: EXIT_LOCKED,
    AuditChainBrokenError: EXIT_AUDIT,
    InputError: EXIT_USAGE,
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"medsleep: error: {_one_line(message)}\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and scheduler-friendly exit codes."""
    logging.basicConfig(
        level=os.environ.get("MEDSLEEP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app(args=argv, prog_name="medsleep", standalone_mode=True)
    except SystemExit:
        raise
    except MedsleepError as exc:
        _fail(str(exc), _EXIT_FOR.get(type(exc), EXIT_FAILURE))
    except SQLAlchemyError as exc:
        _fail(f"database: {getattr(exc, 'orig', None) or exc}", EXIT_FAILURE)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}", EXIT_FAILURE)
    except Exception as exc:  # the edge: one line for schedulers, traceback only on request
        if os.environ.get("MEDSLEEP_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (MEDSLEEP_DEBUG=1 for a traceback)", 1)


__all__ = ["StoreUnavailableError", "app", "main"]

__all__ = ["app", "main"]
