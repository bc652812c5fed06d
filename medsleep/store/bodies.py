"""Each resource's original JSON, stored once and compressed.

A resource's text lives in ``resource_seen.body`` (one row per resource version), not in each
of its readings: a blood-pressure panel's two readings share one copy. Bodies are zstd frames
compressed with a dictionary trained on the store's own first large chunk: FHIR Observations
of one source differ in a few values, so a dictionary takes a 507-byte monitoring Observation
to ~26 bytes where plain zstd gets ~334 (measured on ``medsleep.synth`` output; frames without
magic number, checksum or content size, and the resource's id, already in its key, left out).
Each frame names its dictionary (zstd's dict id in the frame header), so a store may hold
several and old bodies stay readable. The text given back is byte for byte the text that
came in.

A body is dropped once none of its readings is left in the hot store: the archive holds the
text with the readings from then on; after the night the version moves to
``resource_archived`` (by key digest), and restore puts both back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import zstandard
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from medsleep.store.archived_versions import take_back
from medsleep.store.body_codec import (
    FORMAT,
    BodyCodec,
    compressor,
    elided,
    restored,
    train,
)
from medsleep.store.body_codec import TRAIN_MIN_SAMPLES as TRAIN_MIN_SAMPLES
from medsleep.store.body_codec import TRAIN_SAMPLES as TRAIN_SAMPLES
from medsleep.store.bulk import execute_in, select_in
from medsleep.store.search_tokens import encode, tokens_of
from medsleep.store.tables import BODY_DICTIONARY, RESOURCE_SEEN
from medsleep.store.token_ids import token_ids

_dictionary = BODY_DICTIONARY
_seen = RESOURCE_SEEN

Pair = tuple[str, str]  # resource key, version


def _dictionaries(conn: Connection) -> dict[int, zstandard.ZstdCompressionDict]:
    rows = conn.execute(select(_dictionary.c.dict_id, _dictionary.c.data)).all()
    return {int(i): zstandard.ZstdCompressionDict(bytes(data)) for i, data in rows}


def newest_codec(conn: Connection) -> BodyCodec | None:
    """The codec of the store's newest dictionary; None while it has none (its first big
    chunk trains one)."""
    dict_id = conn.execute(select(func.max(_dictionary.c.dict_id))).scalar_one_or_none()
    if dict_id is None:
        return None
    data = conn.execute(
        select(_dictionary.c.data).where(_dictionary.c.dict_id == dict_id)
    ).scalar_one()
    return BodyCodec(int(dict_id), bytes(data))


class BodyWriter:
    """Compresses the bodies of one write (a chunk, a restore) with the store's dictionary."""

    def __init__(
        self,
        conn: Connection,
        samples: Sequence[bytes],
        now_ms: int,
        keys: Sequence[str] | None = None,
    ) -> None:
        """``samples``: texts to train the store's first dictionary on (with their ``keys``,
        as they will be compressed), when it has none yet."""
        known = _dictionaries(conn)
        if not known and len(samples) >= TRAIN_MIN_SAMPLES:
            if keys is not None:
                samples = [elided(t, k) for t, k in zip(samples, keys, strict=True)]
            _train(conn, samples, now_ms)
            known = _dictionaries(conn)
        self.dict_id = max(known) if known else 0
        self._compressor = compressor(self.dict_id, known.get(self.dict_id))

    def compress(self, text: bytes, key: str | None = None) -> bytes:
        """The body of ``text``; with the resource's ``key``, its id is not stored twice."""
        return self._compressor.compress(text if key is None else elided(text, key))


def _train(conn: Connection, samples: Sequence[bytes], now_ms: int) -> int:
    latest = conn.execute(select(func.max(_dictionary.c.dict_id))).scalar_one_or_none()
    dict_id = int(latest or 0) + 1  # a concurrent writer training too: its chunk retries
    data = train(samples, dict_id)
    conn.execute(insert(_dictionary).values(dict_id=dict_id, data=data, created_ms=now_ms))
    return dict_id


def adopt_dictionary(conn: Connection, proposed: BodyCodec, now_ms: int) -> bool:
    """Make ``proposed`` (trained by a parse worker on an ingest's first records, before the
    store was opened) the store's first dictionary, in the caller's transaction; True if the
    store now has exactly it, False if it already had a dictionary (the bodies compressed
    with the proposal must then be compressed again)."""
    known = dictionaries_of(conn)
    if not known:
        conn.execute(
            insert(_dictionary).values(
                dict_id=proposed.dict_id, data=proposed.data, created_ms=now_ms
            )
        )
        return True
    return known.get(proposed.dict_id) == proposed.data


def dictionaries_of(conn: Connection) -> dict[int, bytes]:
    """The store's body dictionaries by id, as stored (what a body's frame header names)."""
    rows = conn.execute(select(_dictionary.c.dict_id, _dictionary.c.data)).all()
    return {int(i): bytes(data) for i, data in rows}


class BodyReader:
    """Decompresses bodies read on one connection (or with the ``dictionaries`` given, such
    as an archive file's own copy), whichever dictionary each names."""

    def __init__(
        self, conn: Connection | None, dictionaries: Mapping[int, bytes] | None = None
    ) -> None:
        self._conn = conn
        self._given = dictionaries
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {}

    def text(self, body: bytes | memoryview, key: str | None = None) -> str:
        """The original text of a body (``key`` as it was compressed with)."""
        blob = bytes(body)
        dict_id = int(zstandard.get_frame_parameters(blob, format=FORMAT).dict_id)
        decompressor = self._decompressors.get(dict_id)
        if decompressor is None:
            data = self._dictionary(dict_id) if dict_id else None
            decompressor = zstandard.ZstdDecompressor(dict_data=data, format=FORMAT)
            self._decompressors[dict_id] = decompressor
        text = decompressor.decompressobj().decompress(blob)  # no content size: a stream
        return (text if key is None else restored(text, key)).decode()

    def _dictionary(self, dict_id: int) -> zstandard.ZstdCompressionDict:
        if self._given is not None:
            if dict_id not in self._given:
                raise KeyError(f"a body names dictionary {dict_id}, which is not given")
            return zstandard.ZstdCompressionDict(self._given[dict_id])
        assert self._conn is not None
        return _dictionaries(self._conn)[dict_id]


def bodies_of(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, bytes]:
    """The stored (compressed) body of each (key, version) whose body is in the hot store;
    :class:`BodyReader` (with the store's :func:`dictionaries_of`) gives its text back."""
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = select_in(
        conn,
        "resource_seen",
        ("resource_key", "resource_version", "body"),
        "resource_key",
        sorted({key for key, _ in wanted}),
    )
    return {
        (str(key), str(version)): bytes(body)
        for key, version, body in rows
        if body is not None and (key, version) in wanted
    }


def texts_of(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, str]:
    """The original text of each (key, version) whose body is in the hot store."""
    reader = BodyReader(conn)
    return {pair: reader.text(body, pair[0]) for pair, body in bodies_of(conn, pairs).items()}


def release_bodies(conn: Connection, keys: Sequence[str]) -> int:
    """Drop the bodies (and id ranges) of these resources' versions that no reading refers to
    any more; returns how many.

    An update in place: after the night ``archived_versions.compact_released`` moves these
    rows to their 16-byte key digests in one transaction, which frees their pages. Moving them
    here, shard by shard, dirtied nearly every page of the digest-ordered table in every
    shard's commit (measured: 4x the CPU and 5x the wall time of a key-ordered write); the
    update costs 1.3 us a version where the delete and re-insert without the body cost 3.6."""
    if not keys:
        return 0
    orphan = (  # its readings by id range (store.resource_ranges)
        "body IS NOT NULL AND NOT EXISTS (SELECT 1 FROM reading r WHERE r.id BETWEEN "
        "resource_seen.first_id AND resource_seen.last_id AND r.resource_key = "
        "resource_seen.resource_key AND r.resource_version = resource_seen.resource_version)"
    )
    # One statement per chunk of keys; the row keeps its place (and its bytes, until
    # compact_released deletes it after the night).
    released, _ = execute_in(
        conn,
        "UPDATE resource_seen SET body = NULL, search_tokens = NULL, first_id = NULL, "
        f"last_id = NULL WHERE {{match}} AND {orphan}",
        "resource_key",
        sorted(set(keys)),
    )
    return released


def put_back_bodies(
    conn: Connection,
    texts: dict[Pair, str],
    batch_ids: dict[Pair, int],
    now_ms: int,
    id_ranges: dict[Pair, tuple[int, int]],
) -> None:
    """Give restored readings their resource's body again (where it was dropped, moving the
    version back from ``resource_archived``), and their versions an id range that covers
    them (``id_ranges``: the restored readings' ids)."""
    if not texts:
        return
    writer = BodyWriter(conn, [], now_ms)
    present = {
        (str(k), str(v)): (body is not None, first, last)
        for k, v, body, first, last in select_in(
            conn,
            "resource_seen",
            ("resource_key", "resource_version", "body", "first_id", "last_id"),
            "resource_key",
            sorted({key for key, _ in texts}),
        )
    }

    def covering(pair: Pair) -> tuple[int, int]:
        lo, hi = id_ranges[pair]
        _, first, last = present.get(pair, (False, None, None))
        return (
            lo if first is None else min(lo, int(first)),
            hi if last is None else max(hi, int(last)),
        )

    wanted = {pair: text for pair, text in texts.items() if not present.get(pair, (False,))[0]}
    widened = {
        pair
        for pair in texts
        if pair in present and covering(pair) != (present[pair][1], present[pair][2])
    }
    tokens = {pair: tokens_of(orjson.loads(text)) for pair, text in wanted.items()}
    ids = token_ids(conn, {t for found in tokens.values() for t in found})

    def search(pair: Pair) -> str | None:
        return encode([ids[t] for t in tokens[pair]])

    updates = [
        {
            "b_key": k,
            "b_version": v,
            "b_body": writer.compress(t.encode(), k),
            "b_search": search((k, v)),
            "b_first": covering((k, v))[0],
            "b_last": covering((k, v))[1],
        }
        for (k, v), t in wanted.items()
        if (k, v) in present
    ]
    ranged = [
        {"b_key": k, "b_version": v, "b_first": covering((k, v))[0], "b_last": covering((k, v))[1]}
        for k, v in sorted(widened - set(wanted))
    ]
    # a version whose readings were all archived comes back from resource_archived
    archived = take_back(conn, [pair for pair in wanted if pair not in present])
    inserts = [
        {
            "resource_key": k,
            "resource_version": v,
            "batch_id": archived.get((k, v), batch_ids[(k, v)]),
            "body": writer.compress(t.encode(), k),
            "search_tokens": search((k, v)),
            "first_id": id_ranges[(k, v)][0],
            "last_id": id_ranges[(k, v)][1],
        }
        for (k, v), t in wanted.items()
        if (k, v) not in present
    ]
    this_version = (
        _seen.c.resource_key == bindparam("b_key"),
        _seen.c.resource_version == bindparam("b_version"),
    )
    bounds: dict[str, Any] = {"first_id": bindparam("b_first"), "last_id": bindparam("b_last")}
    if updates:
        conn.execute(
            update(_seen)
            .where(*this_version)
            .values(body=bindparam("b_body"), search_tokens=bindparam("b_search"), **bounds),
            updates,
        )
    if ranged:
        conn.execute(update(_seen).where(*this_version).values(**bounds), ranged)
    if inserts:
        conn.execute(insert(_seen), inserts)
