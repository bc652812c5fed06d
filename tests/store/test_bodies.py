"""Each resource's text once, compressed, and given back byte for byte: at ingest, after a
night (dropped with the last hot reading, kept in the archive), after restore, and when an
old store (text in every reading) is upgraded and downgraded."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import zstandard
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, text

from medsleep.archive.restore import restore
from medsleep.consolidate.job import consolidate
from medsleep.ingest import ingest_paths
from medsleep.ingest.parse_stream import ParseStream
from medsleep.ingest.parsing import ParseOptions, parse_piece
from medsleep.ingest.sources import InputRecord
from medsleep.ingest.writer import write_chunk
from medsleep.policy import load_policy
from medsleep.server.hot_store import search_observations
from medsleep.server.search_params import ObservationSearch
from medsleep.store.bodies import (
    TRAIN_MIN_SAMPLES,
    BodyReader,
    BodyWriter,
    newest_codec,
    texts_of,
)
from medsleep.store.body_codec import BodyCodec
from medsleep.store.engine import _alembic_config, create_store_engine, open_store
from medsleep.store.handle import Store
from medsleep.timefmt import parse_iso_ms
from tests.helpers import observation, readings

UNTIL = parse_iso_ms("2027-01-01T00:00:00+00:00")
CATEGORIES = "http://terminology.hl7.org/CodeSystem/observation-category"


def _found(engine: Engine, **params: tuple[tuple[str | None, str], ...]) -> set[str]:
    page = search_observations(engine, ObservationSearch(count=5000, **params))
    return {found.resource_key for found in page.found}


def _searchable(engine: Engine, lines: list[str]) -> None:
    """Category and identifier search find exactly the resources that carry them."""
    keys = {"Observation/" + orjson.loads(line)["id"] for line in lines if '"category"' in line}
    assert keys
    assert _found(engine, categories=((CATEGORIES, "vital-signs"),)) == keys
    assert _found(engine, categories=((None, "vital-signs"),)) == keys
    assert _found(engine, categories=(("other", "vital-signs"),)) == set()
    assert _found(engine, identifiers=(("urn:ward7", "dev-5"),)) == {"Observation/hr-5"}
    assert _found(engine, identifiers=((None, "dev-10"),)) == {"Observation/hr-10"}


def _lines(n: int, panel_every: int = 7) -> list[str]:
    """NDJSON lines as a source writes them: odd spacing, non-ASCII, panels of two values."""
    out = []
    for i in range(n):
        when = f"2026-01-05T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
        if i % panel_every == 0:
            resource = observation(f"bp-{i}", code="85354-9", when=when, version="1")
            del resource["valueQuantity"]
            resource["component"] = [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": c}]},
                    "valueQuantity": {"value": v, "unit": "mm[Hg]", "code": "mm[Hg]"},
                }
                for c, v in (("8480-6", 120 + i % 9), ("8462-4", 80))
            ]
        else:
            resource = observation(
                f"hr-{i}", value=60 + i % 30, when=when, version="1", note=[{"text": "Patiënt ☺"}]
            )
        if i % 5 == 0:  # what search by category and identifier matches
            resource["category"] = [{"coding": [{"system": CATEGORIES, "code": "vital-signs"}]}]
            resource["identifier"] = [{"system": "urn:ward7", "value": f"dev-{i}"}]
        line = orjson.dumps(resource).decode(errors="strict")
        out.append(line.replace(',"status"', ' ,  "status"') if i % 3 == 0 else line)
    return out


def _ingest(engine: Engine, tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest_paths(engine, [path])
    assert report.stored == len(lines)


def _by_key(lines: list[str]) -> dict[str, str]:
    return {"Observation/" + orjson.loads(line)["id"]: line for line in lines}


def _seen(engine: Engine) -> tuple[int, int]:
    """Versions known (hot or archived by key digest) and bodies kept."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT count(*), count(body) FROM resource_seen")).one()
        archived = conn.execute(text("SELECT count(*) FROM resource_archived")).scalar_one()
    return int(row[0]) + int(archived), int(row[1])


def test_a_panel_keeps_one_copy_and_every_text_comes_back_exactly(
    db_url: str, tmp_path: Path
) -> None:
    engine = open_store(db_url)
    lines = _lines(TRAIN_MIN_SAMPLES + 200)  # enough for the store to train its dictionary
    _ingest(engine, tmp_path, lines)
    expected = _by_key(lines)
    stored = readings(engine)
    assert len(stored) > len(lines)  # panels give two readings
    assert _seen(engine) == (len(lines), len(lines))  # but one body each
    assert all(r["resource_json"] == expected[r["resource_key"]] for r in stored)
    assert "resource_json" not in {c["name"] for c in inspect(engine).get_columns("reading")}
    _searchable(engine, lines)
    with engine.connect() as conn:
        dictionaries = conn.execute(text("SELECT count(*) FROM body_dictionary")).scalar_one()
        bodies = [bytes(b) for (b,) in conn.execute(text("SELECT body FROM resource_seen"))]
    assert dictionaries == 1
    average = sum(map(len, bodies)) / len(bodies)
    assert average < 0.25 * sum(map(len, lines)) / len(lines)  # the dictionary earns its keep
    engine.dispose()


def test_a_small_store_compresses_without_a_dictionary(sqlite_url: str, tmp_path: Path) -> None:
    engine = open_store(sqlite_url)
    lines = _lines(20)
    _ingest(engine, tmp_path, lines)
    expected = _by_key(lines)
    assert all(r["resource_json"] == expected[r["resource_key"]] for r in readings(engine))
    engine.dispose()


def test_a_night_drops_the_archived_bodies_and_restore_puts_them_back(
    db_url: str, tmp_path: Path
) -> None:
    engine = open_store(db_url)
    lines = _lines(1500)
    _ingest(engine, tmp_path, lines)
    store = Store.open(db_url, tmp_path / "arch")
    report = consolidate(store, load_policy(), until_ms=UNTIL)
    assert report.collapsed > 0
    hot_keys = {r["resource_key"] for r in readings(engine)}
    assert _seen(engine) == (len(lines), len(hot_keys))  # every version still known
    back = restore(store, run_id=report.run_id)
    assert back.readings == report.collapsed
    expected = _by_key(lines)
    stored = readings(engine)
    assert {r["resource_key"] for r in stored} == set(expected)
    assert all(r["resource_json"] == expected[r["resource_key"]] for r in stored)
    assert _seen(engine) == (len(lines), len(lines))
    _searchable(engine, lines)  # restore gave the versions their search tokens back
    engine.dispose()


def test_an_old_store_is_carried_over_and_back(db_url: str) -> None:
    lines = _lines(TRAIN_MIN_SAMPLES + 50)
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0005")
    with engine.begin() as conn:  # the shape of a store before 0006: the text in each reading
        for i, line in enumerate(lines):
            key = "Observation/" + orjson.loads(line)["id"]
            conn.execute(text("INSERT INTO resource_seen VALUES (:k, '1', 1)"), {"k": key})
            for part in (0, 1) if "bp-" in key else (-1,):
                conn.execute(
                    text(
                        "INSERT INTO reading (patient, code_system, code, effective_ms, value, "
                        "unit, orig_value, orig_unit, resource_key, resource_version, part, "
                        "status, batch_id, state, resource_json) VALUES ('p1', 's', 'c', :t, "
                        "1, 'u', 1, 'u', :k, '1', :part, 'final', 1, 'raw', :j)"
                    ),
                    {"t": i, "k": key, "part": part, "j": line},
                )
    engine.dispose()
    engine = open_store(db_url)  # upgrades to the head
    expected = _by_key(lines)
    stored = readings(engine)
    assert len(stored) == len(lines) + sum("bp-" in key for key in expected)
    assert all(r["resource_json"] == expected[r["resource_key"]] for r in stored)
    assert _seen(engine) == (len(lines), len(lines))
    _searchable(engine, lines)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0005")
        back = dict(conn.execute(text("SELECT resource_key, resource_json FROM reading")).all())
    assert back == expected
    engine.dispose()


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(min_size=0, max_size=400), min_size=1, max_size=30))
def test_bodies_round_trip_any_text(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str]
) -> None:
    engine = open_store(f"sqlite:///{tmp_path_factory.getbasetemp() / 'bodies.db'}")
    with engine.begin() as conn:
        writer = BodyWriter(conn, [], 0)
        reader = BodyReader(conn)
        assert [reader.text(writer.compress(t.encode())) for t in texts] == texts
    engine.dispose()


no_nul = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(rid=no_nul, before=no_nul, between=no_nul, after=no_nul, times=st.integers(0, 3))
def test_a_body_leaves_out_its_id_and_gives_it_back_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    rid: str,
    before: str,
    between: str,
    after: str,
    times: int,
) -> None:
    """The id is stored once (in the key), wherever and however often the text names it."""
    text = before + between.join([f'"{rid}"'] * times) + after
    engine = open_store(f"sqlite:///{tmp_path_factory.getbasetemp() / 'ids.db'}")
    with engine.begin() as conn:
        body = BodyWriter(conn, [], 0).compress(text.encode(), f"Observation/{rid}")
        assert BodyReader(conn).text(body, f"Observation/{rid}") == text
    engine.dispose()


def test_a_text_with_a_nul_byte_is_refused_not_mangled(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.begin() as conn, pytest.raises(ValueError, match="NUL"):
        BodyWriter(conn, [], 0).compress(b'{"id":"a","x":"\x00"}', "Observation/a")
    engine.dispose()


def test_texts_of_skips_what_is_not_hot(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.connect() as conn:
        assert texts_of(conn, [("Observation/none", "1")]) == {}
    engine.dispose()


def _bodies(engine: Engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT resource_key, body FROM resource_seen")).all()
    return {str(key): bytes(body) for key, body in rows}


def test_workers_compress_the_bodies_as_the_writer_would(sqlite_url: str, tmp_path: Path) -> None:
    """With ``workers`` the parse processes compress the bodies once the store has trained
    its dictionary (on the first chunk): each body is what the writer would have made of
    the text, and every text comes back exactly."""
    lines = _lines(18_000)  # ~8 MiB: blocks enough to be parsed after the dictionary exists
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = open_store(sqlite_url)
    report = ingest_paths(engine, [path], workers=2)
    assert report.stored == len(lines)
    expected = _by_key(lines)
    with engine.begin() as conn:
        writer = BodyWriter(conn, [], 0)
        assert writer.dict_id == 1
        for key, body in _bodies(engine).items():
            assert body == writer.compress(expected[key].encode(), key), key
    assert all(r["resource_json"] == expected[r["resource_key"]] for r in readings(engine))
    engine.dispose()


def test_parse_workers_get_the_dictionary_once_the_store_has_one() -> None:
    """The pool's later pieces are compressed with the codec the writer hands over after
    its first chunk; the pieces submitted before it come back as text."""
    lines = [orjson.dumps(observation(f"w{i}", value=60 + i % 30)) for i in range(2000)]
    records = [InputRecord("x", f"line {i}", raw, nbytes=len(raw)) for i, raw in enumerate(lines)]
    samples = [line.replace(b'"w', b'"v') for line in lines]
    codec = BodyCodec(3, zstandard.train_dictionary(4096, samples, dict_id=3).as_bytes())
    packed = []
    with ParseStream(records, options=ParseOptions(), workers=2, write_size=100) as stream:
        for chunk in stream.chunks():
            stream.codec = codec  # as the writer does once its first chunk trained the dictionary
            packed.extend(item.packed_with for item in chunk)
    assert len(packed) == len(lines)
    assert packed[0] is None
    assert packed[-1] == 3
    assert packed.index(3) <= 100 * (1 + 2 * 3 + 1)  # the window of pieces already in flight
    assert set(packed[packed.index(3) :]) == {3}


def test_a_body_packed_with_an_older_dictionary_is_compressed_again(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A worker's body compressed with another of the store's dictionaries (one trained by a
    concurrent ingest since) is stored with the writer's, from its original text."""
    engine = open_store(sqlite_url)
    _ingest(engine, tmp_path, _lines(TRAIN_MIN_SAMPLES + 10))  # trains dictionary 1
    with engine.begin() as conn:
        first = newest_codec(conn)
        assert first is not None
        assert first.dict_id == 1
        conn.execute(  # a second dictionary, as a concurrent writer might have trained
            text("INSERT INTO body_dictionary (dict_id, data, created_ms) VALUES (2, :d, 0)"),
            {
                "d": zstandard.train_dictionary(
                    4096, [s.encode() for s in _lines(1200)], dict_id=2
                ).as_bytes()
            },
        )
    line = orjson.dumps(observation("late", value=99, version="1"))
    record = InputRecord("x", "line 1", line, nbytes=len(line))
    packed = parse_piece([record], ParseOptions(), first)
    assert packed[0].packed_with == 1
    assert packed[0].body != line
    with engine.connect() as conn:
        counts = write_chunk(conn, packed, batch_id=1, now_ms=0)
    assert counts.stored == 1
    body = _bodies(engine)["Observation/late"]
    frame = zstandard.get_frame_parameters(body, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
    assert frame.dict_id == 2
    with engine.connect() as conn:
        assert BodyReader(conn).text(body, "Observation/late") == line.decode()
    engine.dispose()
