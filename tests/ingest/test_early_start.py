"""Parse workers that start before the store is opened (``ParseStream.start``): into a fresh
SQLite store the first piece trains the dictionary and the store adopts it; into one that has a
dictionary they use the store's; when a concurrent ingest stored one first, the proposal is
rejected and every text still comes back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from sqlalchemy import Engine
from typer.testing import CliRunner

from medsleep.cli import app
from medsleep.ingest import ingest_paths, ingest_stream
from medsleep.ingest.parse_stream import ParseStream
from medsleep.ingest.parsing import ParseOptions
from medsleep.store.bodies import TRAIN_MIN_SAMPLES, dictionaries_of, newest_codec, texts_of
from medsleep.store.body_codec import BodyCodec, codec_before_open
from medsleep.store.engine import open_store
from tests.helpers import observation


def _write(path: Path, n: int, prefix: str, base: int = 60) -> dict[str, str]:
    """``n`` one-value Observations as NDJSON; their texts by key."""
    lines = {
        f"Observation/{prefix}-{i}": orjson.dumps(
            observation(
                f"{prefix}-{i}",
                version="1",
                value=base + i % 30,
                when=f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            )
        ).decode()
        for i in range(n)
    }
    path.write_text("\n".join(lines.values()) + "\n", encoding="utf-8")
    return lines


def _texts(engine: Engine, keys: list[str]) -> dict[str, str]:
    with engine.connect() as conn:
        found = texts_of(conn, [(key, "1") for key in keys])
    return {key: value for (key, _), value in found.items()}


def _ingest_started(
    url: str, path: Path, codec: BodyCodec | None, propose: int | None
) -> BodyCodec | None:
    """Ingest ``path`` with the workers started before the store is opened; the proposal the
    writer adopted, if any."""
    stream = ParseStream.of_files([str(path)], options=ParseOptions(), workers=2)
    with stream:
        stream.start(codec, propose=propose)
        engine = open_store(url)
        report = ingest_stream(engine, stream, [str(path)])
        adopted = stream.proposal()
    assert report.balanced
    assert report.stored == report.resources
    engine.dispose()
    return adopted


def test_a_fresh_store_adopts_the_dictionary_the_first_piece_trained(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert codec_before_open(url) == (None, 1)
    lines = _write(tmp_path / "in.ndjson", 6000, "hr")
    adopted = _ingest_started(url, tmp_path / "in.ndjson", *codec_before_open(url))
    assert adopted is not None
    engine = open_store(url)
    with engine.connect() as conn:
        assert dictionaries_of(conn) == {1: adopted.data}
    assert _texts(engine, list(lines)) == lines
    engine.dispose()


def test_a_store_with_a_dictionary_gives_its_own_to_the_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = _write(tmp_path / "first.ndjson", TRAIN_MIN_SAMPLES + 100, "a")
    engine = open_store(url)
    ingest_paths(engine, [tmp_path / "first.ndjson"])  # the writer trains dictionary 1
    with engine.connect() as conn:
        stored = newest_codec(conn)
    engine.dispose()
    codec, propose = codec_before_open(url)
    assert (codec, propose) == (stored, None)
    later = _write(tmp_path / "later.ndjson", 6000, "b", base=90)
    assert _ingest_started(url, tmp_path / "later.ndjson", codec, propose) is None
    engine = open_store(url)
    with engine.connect() as conn:
        assert list(dictionaries_of(conn)) == [1]
    assert _texts(engine, list(first) + list(later)) == first | later
    engine.dispose()


def test_a_proposal_the_store_cannot_take_comes_back_as_texts(tmp_path: Path) -> None:
    """As if a concurrent ingest stored the first dictionary between ``codec_before_open``
    and the writer: the workers' bodies, compressed with the rejected proposal (same id 1,
    other bytes), are stored compressed with the store's own, and read back exactly."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = _write(tmp_path / "first.ndjson", TRAIN_MIN_SAMPLES + 100, "a")
    engine = open_store(url)
    ingest_paths(engine, [tmp_path / "first.ndjson"])
    with engine.connect() as conn:
        own = dictionaries_of(conn)
    engine.dispose()
    later = _write(tmp_path / "later.ndjson", 6000, "b", base=120)
    # it proposes an id 1 of its own, which the writer refuses
    assert _ingest_started(url, tmp_path / "later.ndjson", None, 1) is None
    engine = open_store(url)
    with engine.connect() as conn:
        assert dictionaries_of(conn) == own  # the store kept its own, and only it
    assert _texts(engine, list(first) + list(later)) == first | later
    engine.dispose()


def test_the_cli_starts_the_workers_early_and_stores_every_text(tmp_path: Path) -> None:
    lines = _write(tmp_path / "in.ndjson", 6000, "hr")
    db = tmp_path / "cli.db"
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "in.ndjson"), "--db", str(db), "--workers", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["stored"] == len(lines)
    engine = open_store(f"sqlite:///{db}")
    assert _texts(engine, list(lines)) == lines
    engine.dispose()


def test_only_an_sqlite_file_is_read_before_it_is_opened(tmp_path: Path) -> None:
    assert codec_before_open("postgresql+psycopg://u@127.0.0.1/x") == (None, None)
    assert codec_before_open("sqlite://") == (None, None)
    assert codec_before_open("sqlite:///:memory:") == (None, None)
    not_a_store = tmp_path / "other.db"
    not_a_store.write_bytes(b"not sqlite at all")
    assert codec_before_open(f"sqlite:///{not_a_store}") == (None, 1)  # proposes; may be refused
