"""Bodies compressed by ``--workers`` processes: the same frames and text as the writer's own."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from medsleep.ingest import ingest_paths
from medsleep.ingest.parsing import ParseOptions, parse_chunk
from medsleep.ingest.records import InputRecord
from medsleep.store.archived_versions import key_digest, stored_versions
from medsleep.store.bodies import BodyPacker, BodyWriter, dictionaries_of, texts_of
from medsleep.store.engine import open_store
from medsleep.store.tables import RESOURCE_SEEN
from tests.helpers import observation

_seen = RESOURCE_SEEN


def _minute(i: int) -> str:
    return f"2026-01-05T10:{i % 60:02d}:00Z"


def _lines(prefix: str, n: int) -> list[str]:
    return [
        json.dumps(observation(f"{prefix}{i}", value=50 + i % 40, when=_minute(i)))
        for i in range(n)
    ]


def _bodies(engine: object) -> dict[tuple[str, str], bytes]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(_seen.c.resource_key, _seen.c.resource_version, _seen.c.body))
        return {(str(k), str(v)): bytes(b) for k, v, b in rows}


def test_worker_frames_equal_the_writers_and_give_the_text_back(tmp_path: Path) -> None:
    first, second = _lines("a", 3000), _lines("b", 3000)
    (tmp_path / "first.ndjson").write_text("".join(line + "\n" for line in first))
    (tmp_path / "second.ndjson").write_text("".join(line + "\n" for line in second))
    engine = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    # the first file trains the store's dictionary mid-way; the second finds it at the start
    for name in ("first", "second"):
        report = ingest_paths(
            engine, [str(tmp_path / f"{name}.ndjson")], chunk_size=1000, workers=2
        )
        assert report.stored == 3000
        assert report.balanced
    stored = _bodies(engine)
    assert len(stored) == 6000
    originals = {f"Observation/{json.loads(t)['id']}": t for t in first + second}
    with engine.begin() as conn:
        assert list(dictionaries_of(conn)) == [1]
        writer = BodyWriter(conn, [], 0)
        texts = texts_of(conn, list(stored))
    # byte for byte the frame the writer makes itself with the store's dictionary
    for (key, _), frame in stored.items():
        assert frame == writer.body(originals[key].encode(), key, None)
    assert {key: text for (key, _), text in texts.items()} == originals


def test_a_frame_packed_with_an_older_dictionary_is_compressed_again(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    samples = [line.encode() for line in _lines("t", 1200)]
    keys = [f"Observation/t{i}" for i in range(1200)]
    with engine.begin() as conn:
        writer = BodyWriter(conn, samples, 0, keys)  # trains dictionary 1
        newest = dictionaries_of(conn)
    assert writer.dict_id == 1
    text, key = samples[0], keys[0]
    fresh = BodyPacker((1, newest[1])).pack(text, key)
    stale = (0, b"not a frame of this dictionary")
    assert writer.body(text, key, fresh) == fresh[1]
    assert writer.body(text, key, stale) == writer.body(text, key, None)
    assert writer.body(text, key, stale) != stale[1]


def test_digests_computed_elsewhere_find_the_same_versions(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'd.db'}")
    (tmp_path / "x.ndjson").write_text("".join(line + "\n" for line in _lines("d", 50)))
    ingest_paths(engine, [str(tmp_path / "x.ndjson")])
    keys = [f"Observation/d{i}" for i in range(50)] + ["Observation/never"]
    with engine.connect() as conn:
        plain = stored_versions(conn, keys)
        given = stored_versions(conn, keys, {k: key_digest(k) for k in keys[:25]})
    assert plain == given
    assert len(plain) == 50


def test_with_a_dictionary_the_parse_brings_its_frame_and_digest(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    samples = [line.encode() for line in _lines("q", 1200)]
    keys = [f"Observation/q{i}" for i in range(1200)]
    with engine.begin() as conn:
        writer = BodyWriter(conn, samples, 0, keys)
        dictionary = (1, dictionaries_of(conn)[1])
    records = [InputRecord("f", str(i), raw, nbytes=len(raw)) for i, raw in enumerate(samples)]
    packed = parse_chunk(records, ParseOptions(body_dictionary=dictionary))
    plain = parse_chunk(records, ParseOptions())
    for item, without in zip(packed, plain, strict=True):
        assert item.packed == (1, writer.body(item.body, item.key, None))
        assert item.digest == key_digest(item.key)
        assert without.packed is None
        assert without.digest == b""
        assert item._replace(packed=None, digest=b"") == without
