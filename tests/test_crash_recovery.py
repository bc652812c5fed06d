"""SIGKILL at the worst moments (issue 12): first-use schema creation, an ingest batch."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medsleep.store.engine import current_revision, head_revision, open_store

SCHEMA_TRIALS = 16
_CREATE = """
import sys, time
from medsleep.store.engine import open_store
print("ready", flush=True)
started = time.perf_counter()
open_store(sys.argv[1]).dispose()
print(time.perf_counter() - started, flush=True)
"""


def _create_in_child(url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _CREATE, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.slow
def test_sigkill_during_first_use_schema_creation_leaves_a_store_that_opens(
    tmp_path: Path,
) -> None:
    full = _create_in_child(f"sqlite:///{tmp_path / 'full.db'}")
    out, _ = full.communicate()
    creation = float(out.strip())
    rng = random.Random(12)
    killed = 0
    for trial in range(SCHEMA_TRIALS):
        url = f"sqlite:///{tmp_path / f't{trial}.db'}"
        proc = _create_in_child(url)
        time.sleep(rng.uniform(0.0, creation))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        engine = open_store(url)  # raised "table reading already exists" in 2 of 16
        assert current_revision(engine) == head_revision()
        engine.dispose()
    assert killed >= SCHEMA_TRIALS // 2, "most kills must land while the schema is created"
