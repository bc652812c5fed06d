"""Write parse results to the store: dedupe, supersede, retract, quarantine, in one transaction
per chunk."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from medsleep.fhir.demographics import PATIENT_STORED
from medsleep.ingest.parsing import Parsed
from medsleep.ingest.patients import upsert_patients
from medsleep.store.archived_versions import stored_versions
from medsleep.store.bodies import BodyReader, BodyWriter
from medsleep.store.bulk import insert_rows
from medsleep.store.resource_ranges import (
    IdRange,
    inserted_reading_ids,
    ranges_of,
    readings_of,
    reserved_reading_ids,
)
from medsleep.store.search_tokens import encode
from medsleep.store.tables import (
    HOT_STATES,
    QUARANTINE,
    READING,
    READING_ROW,
    RESOURCE_SEEN,
    ReadingState,
)
from medsleep.store.token_ids import token_ids

log = logging.getLogger(__name__)
_reading = READING
_seen = RESOURCE_SEEN
_quarantine = QUARANTINE
_ACTIVE = HOT_STATES
_IN_CLAUSE = 500
SEEN_COLUMNS = (
    "resource_key",
    "resource_version",
    "batch_id",
    "body",
    "search_tokens",
    "first_id",
    "last_id",
)
_KEY, _VERSION = READING_ROW.index("resource_key"), READING_ROW.index("resource_version")
_RETRIES = 5
_NO_RANGE: tuple[None, None] = (None, None)  # a stored version without readings
RangeOrNone = IdRange | tuple[None, None]


@dataclass
class ChunkCounts:
    """What one chunk did; every resource lands in exactly one of the first four."""

    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    quarantined: int = 0
    readings: int = 0
    superseded: int = 0
    retracted: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: ChunkCounts) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.skipped += other.skipped
        self.quarantined += other.quarantined
        self.readings += other.readings
        self.superseded += other.superseded
        self.retracted += other.retracted
        self.skipped_reasons.update(other.skipped_reasons)


def _newer(candidate: str, existing: set[str]) -> bool:
    """Whether a version should become the active one; integer versionIds compare as numbers."""
    if candidate.isdigit() and all(v.isdigit() for v in existing):
        return int(candidate) > max(int(v) for v in existing)
    return True  # no order to go by: the latest arrival wins


def _known_versions(conn: Connection, keys: Sequence[str]) -> dict[str, set[str]]:
    """Every version of these keys stored before, hot or archived (store.archived_versions)."""
    return {key: set(versions) for key, versions in stored_versions(conn, keys).items()}


def write_chunk(
    conn: Connection, parsed: Sequence[Parsed], batch_id: int, now_ms: int
) -> ChunkCounts:
    """Write one chunk in one transaction on ``conn`` (an open connection outside any
    transaction), retrying when a concurrent writer wins a race.

    Callers keep one connection for a whole batch: on SQLite a fresh connection per chunk
    would start with a cold page cache and checkpoint the WAL each time it closes.
    """
    for attempt in range(_RETRIES):
        try:
            with conn.begin():
                return _write(conn, parsed, batch_id, now_ms)
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
            log.info("concurrent ingest of the same resources; retrying chunk")
    raise AssertionError("unreachable")


def _write(conn: Connection, parsed: Sequence[Parsed], batch_id: int, now_ms: int) -> ChunkCounts:
    counts = ChunkCounts()
    keys = list({p.key for p in parsed if p.key})
    known = _known_versions(conn, keys) if keys else {}
    stored_items: list[Parsed] = []
    rows: list[tuple[object, ...]] = []  # READING_ROW order, state raw
    late_rows: list[tuple[object, ...]] = []  # older versions arriving late: never active
    quarantine_rows: list[dict[str, object]] = []
    supersede: set[str] = set()
    retract: set[str] = set()
    active_in_chunk: dict[str, str] = {}

    stored = duplicates = skipped = 0
    patients: list[tuple[object, ...]] = []  # Patient resources' demographics
    multi: set[str] = set()  # keys with more than one version in play: need the slow path
    for item in parsed:
        if item.error is not None:
            counts.quarantined += 1
            quarantine_rows.append(
                {
                    "batch_id": batch_id,
                    "at_ms": now_ms,
                    "source": item.source,
                    "position": item.position,
                    "error": item.error,
                    "raw": item.raw.decode(errors="replace"),
                }
            )
            continue
        if item.skipped is not None:
            skipped += 1
            counts.skipped_reasons[item.skipped] += 1
            if item.skipped == PATIENT_STORED:
                patients.extend(item.readings)
            if item.retracts and item.key in known:
                retract.add(item.key)
            continue
        key, version = item.key, item.version
        versions = known.get(key)
        if versions is None:  # the common case: a resource never seen before
            known[key] = {version}
            active_in_chunk[key] = version
            rows.extend(item.readings)
        elif version in versions:
            duplicates += 1
            continue
        else:
            multi.add(key)
            if _newer(version, versions):
                supersede.add(key)
                active_in_chunk[key] = version
                rows.extend(item.readings)
            else:
                late_rows.extend(item.readings)
            versions.add(version)
        stored_items.append(item)
        stored += 1
    counts.stored, counts.duplicates, counts.skipped = stored, duplicates, skipped

    for key in sorted(supersede):
        counts.superseded += _set_state(conn, key, ReadingState.SUPERSEDED)
    for key in sorted(retract):
        counts.retracted += _set_state(conn, key, ReadingState.RETRACTED)
    by_state = {ReadingState.RAW: rows, ReadingState.SUPERSEDED: late_rows}
    if multi or retract:  # versions superseded or retracted within this very chunk
        raw: list[tuple[object, ...]] = []
        superseded: list[tuple[object, ...]] = []
        retracted: list[tuple[object, ...]] = []
        for row in rows:
            key = str(row[_KEY])
            if key in retract:
                retracted.append(row)
            elif active_in_chunk[key] != row[_VERSION]:
                superseded.append(row)
            else:
                raw.append(row)
        counts.superseded += len(superseded)
        for row in late_rows:
            (retracted if row[_KEY] in retract else superseded).append(row)
        counts.retracted += len(retracted)
        by_state = {
            ReadingState.RAW: raw,
            ReadingState.SUPERSEDED: superseded,
            ReadingState.RETRACTED: retracted,
        }
    # Readings first: their ids go into their versions' resource_seen rows (store.resource_ranges).
    in_order = [state_rows for state_rows in by_state.values() if state_rows]
    total = sum(len(state_rows) for state_rows in in_order)
    reserved = reserved_reading_ids(conn, total)
    start = 0
    columns: tuple[str, ...]
    values: Sequence[Sequence[object]]
    for state, state_rows in by_state.items():
        if reserved is None:
            columns, values = READING_ROW, state_rows
        else:
            part = reserved[start : start + len(state_rows)]
            columns = ("id", *READING_ROW)
            values = [(i, *row) for i, row in zip(part, state_rows, strict=True)]
        start += len(state_rows)
        insert_rows(conn, "reading", columns, values, {"batch_id": batch_id, "state": state})
    ids = reserved if reserved is not None else inserted_reading_ids(conn, total)
    if stored_items:
        id_ranges: list[RangeOrNone]  # stored_items' own, in their order
        if multi or retract:
            flat = [row for state_rows in in_order for row in state_rows]
            ranges = ranges_of(flat, ids, _KEY, _VERSION)
            id_ranges = [ranges.get((item.key, item.version), _NO_RANGE) for item in stored_items]
        else:  # the readings are the stored versions' in order, all in one list
            id_ranges = _ranges_in_order(stored_items, ids)
        # Each stored version's text once, for all its readings (see store.bodies).
        texts = [item for item in stored_items if item.packed_with is None]
        bodies = BodyWriter(conn, [i.body for i in texts], now_ms, [i.key for i in texts])
        # a chunk's resources share a handful of token sets (a monitor's one category)
        token_sets = {item.tokens for item in stored_items}
        token_of = token_ids(conn, {t for tokens in token_sets for t in tokens})
        search = {tokens: encode([token_of[t] for t in tokens]) for tokens in token_sets}
        compress = bodies.compress
        dict_id = bodies.dict_id
        reader = BodyReader(conn)  # reads a dictionary only if a body needs packing again
        # The body as a bytearray: Python's sqlite3 binds bytearray directly but runs bytes
        # through its adapter lookup first (a failed __adapt__ and __conform__, each raising
        # and catching an AttributeError): ~3k CPU instructions a row, measured with
        # callgrind. It is stored as the same BLOB (bytea through COPY on PostgreSQL).
        # A parse worker may have compressed it already: kept when with this write's dictionary,
        # else (a newer one trained meanwhile) decompressed and compressed again.
        seen_rows = [
            (
                item.key,
                item.version,
                batch_id,
                bytearray(
                    item.body
                    if item.packed_with == dict_id
                    else compress(_text_of(reader, item), item.key)
                ),
                search[item.tokens],
                *id_range,
            )
            for item, id_range in zip(stored_items, id_ranges, strict=True)
        ]
        insert_rows(conn, "resource_seen", SEEN_COLUMNS, seen_rows)
    if quarantine_rows:
        conn.execute(insert(_quarantine), quarantine_rows)
    if patients:
        upsert_patients(conn, patients, now_ms)
    counts.readings = sum(len(state_rows) for state_rows in by_state.values())
    return counts


def _text_of(reader: BodyReader, item: Parsed) -> bytes:
    """The resource's original text, also when a worker compressed it with another of the
    store's dictionaries (one trained by a concurrent ingest since)."""
    if item.packed_with is None:
        return item.body
    return reader.text(item.body, item.key).encode()


def _ranges_in_order(items: Sequence[Parsed], ids: Sequence[int]) -> list[RangeOrNone]:
    """Each item's id range when the ids are its readings' in the items' order; a version
    without readings has none."""
    ranges: list[RangeOrNone] = []
    start = 0
    for item in items:
        n = len(item.readings)
        if n:
            ranges.append((ids[start], ids[start + n - 1]))
            start += n
        else:
            ranges.append(_NO_RANGE)
    return ranges


def _set_state(conn: Connection, key: str, state: str) -> int:
    """Move a stored resource's active readings to ``state``; returns how many moved."""
    result = conn.execute(
        update(_reading)
        .where(readings_of([key]), _reading.c.state.in_(_ACTIVE))
        .values(state=state)
    )
    return int(result.rowcount)
