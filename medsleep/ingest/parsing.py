"""From input records to parse results: JSON decoding, FHIR checks, readings.

Pure and picklable, so that ``--workers N`` can run it in a process pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, NamedTuple

import orjson

from medsleep.fhir.demographics import PATIENT_STORED, demographics
from medsleep.fhir.fastpath import FastResult, fast_parse, numbers_may_overflow
from medsleep.fhir.parse import ResourceRejected, parse_observation, validate_resource
from medsleep.ingest.sources import InputRecord, NdjsonBlock, block_records
from medsleep.store.body_codec import (
    TRAIN_MIN_SAMPLES,
    BodyCodec,
    compress_with,
    elided,
    train,
)
from medsleep.store.search_tokens import Token, tokens_of


@dataclass(frozen=True)
class ParseOptions:
    strict: bool = False
    fhir_version: str = "R4"
    default_tz: tzinfo | None = None


class Parsed(NamedTuple):
    """A record and what became of it: readings, a skip reason, or an error.

    Plain values only, so that worker processes hand results back at C speed. Readings are
    already the store's rows (``READING_ROW``): the writer adds only the batch and state.
    """

    source: str
    position: str
    nbytes: int
    error: str | None = None
    raw: bytes = b""  # kept only for quarantine
    skipped: str | None = None
    key: str = ""
    version: str = ""
    status: str = ""
    readings: tuple[tuple[Any, ...], ...] = ()  # rows in READING_ROW order (a Patient's:
    # its one PATIENT_ROW, with ``skipped`` PATIENT_STORED)
    body: bytes = b""  # the resource's original text, stored once for all its readings
    tokens: tuple[Token, ...] = ()  # what search by category and identifier matches
    packed_with: int | None = None  # ``body`` is already compressed with this dictionary

    @property
    def retracts(self) -> bool:
        return self.status == "entered-in-error"


def _rejected(record: InputRecord, error: str) -> Parsed:
    return Parsed(record.source, record.position, record.nbytes, error=error, raw=record.raw)


def parse_record(
    record: InputRecord,
    options: ParseOptions,
    numbers_checked: bool = False,
    codec: BodyCodec | None = None,
) -> Parsed:
    """The fast path when the record takes it, else the general path. With ``codec`` (in a
    worker process), the fast path's body comes back compressed as the store keeps it."""
    if record.error is None and record.resource is None and not options.strict:
        fast = fast_parse(record.raw, options.default_tz, numbers_checked, record.subject_target)
        if fast is not None:
            return _fast_parsed(record, fast, codec)
    return _parse_general(record, options)


def _fast_parsed(record: InputRecord, fast: FastResult, codec: BodyCodec | None) -> Parsed:
    # tuple.__new__: a NamedTuple's own __new__ is Python code
    head = (record.source, record.position, record.nbytes, None, b"", None)
    if codec is None:
        return tuple.__new__(Parsed, (*head, *fast, None))
    key, version, status, readings, raw, tokens = fast
    body = compress_with(codec, raw, key)
    packed = (key, version, status, readings, body, tokens, codec.dict_id)
    return tuple.__new__(Parsed, (*head, *packed))


def _parse_general(record: InputRecord, options: ParseOptions) -> Parsed:
    if record.error is not None:
        return _rejected(record, record.error)
    resource: Any = record.resource
    if resource is None:
        try:
            resource = orjson.loads(record.raw)
        except orjson.JSONDecodeError as exc:
            return _rejected(record, f"invalid JSON: {exc}")
    if not isinstance(resource, dict):
        return _rejected(record, "not a JSON object")
    where = (record.source, record.position, record.nbytes)
    rtype = resource.get("resourceType")
    if rtype == "Patient":  # demographics for the headers: one row in ``readings``
        try:
            row = demographics(resource, record.full_url)
        except ResourceRejected as exc:
            return _rejected(record, str(exc))
        return Parsed(*where, None, b"", PATIENT_STORED, readings=(row,))
    if rtype != "Observation":
        label = rtype if isinstance(rtype, str) else "no resourceType"
        return Parsed(*where, skipped=f"not an Observation ({label})")
    target = record.subject_target
    try:
        if options.strict:
            validate_resource(resource, options.fhir_version)
        outcome = parse_observation(
            resource,
            resolve=(lambda _ref: target) if target else None,
            full_url=record.full_url,
            default_tz=options.default_tz,
        )
    except ResourceRejected as exc:
        return _rejected(record, str(exc))
    key, version, status = identity = (outcome.resource_key, outcome.version, outcome.status)
    if outcome.skipped is not None:
        return Parsed(*where, None, b"", outcome.skipped, *identity)
    readings = tuple(
        (*r[:8], key, version, r.part, status, r.interpretation, r.reference_range)
        for r in outcome.readings
    )
    return Parsed(*where, None, b"", None, *identity, readings, record.raw, tokens_of(resource))


def parse_chunk(
    records: list[InputRecord], options: ParseOptions, codec: BodyCodec | None = None
) -> list[Parsed]:
    if options.strict:  # every record is validated whole: no fast path, no overflow scan
        return [_parse_general(record, options) for record in records]
    # One overflow scan for the whole chunk (see numbers_may_overflow); rarely positive.
    checked = not numbers_may_overflow(b"\n".join([r.raw for r in records if r.resource is None]))
    return [parse_record(record, options, checked, codec) for record in records]


def parse_piece(
    piece: list[InputRecord] | NdjsonBlock, options: ParseOptions, codec: BodyCodec | None = None
) -> list[Parsed]:
    """``parse_chunk`` of a worker's piece: records, or a block of NDJSON lines to split.

    A worker compresses the bodies too (``codec``: the store's dictionary), so that the writing
    process, the one that cannot be parallel, neither compresses them nor unpickles the text.
    """
    records = list(block_records(piece)) if isinstance(piece, NdjsonBlock) else piece
    return parse_chunk(records, options, codec)


def parse_and_train(
    piece: list[InputRecord] | NdjsonBlock, options: ParseOptions, dict_id: int
) -> tuple[list[Parsed], BodyCodec | None]:
    """``parse_piece`` of an ingest's first piece into a store without a dictionary: it also
    trains one (``dict_id``) on the piece's bodies and compresses them with it. The store
    takes it as its first (``store.bodies.adopt_dictionary``) unless it has one by then. No
    codec when fewer than ``TRAIN_MIN_SAMPLES`` records have a body."""
    results = parse_piece(piece, options)
    texts = [(i, elided(p.body, p.key)) for i, p in enumerate(results) if _packable(p)]
    if len(texts) < TRAIN_MIN_SAMPLES:
        return results, None
    codec = BodyCodec(dict_id, train([text for _, text in texts], dict_id))
    for i, _ in texts:
        item = results[i]
        results[i] = item._replace(
            body=compress_with(codec, item.body, item.key), packed_with=dict_id
        )
    return results, codec


def _packable(item: Parsed) -> bool:
    return bool(item.body) and item.packed_with is None and 0 not in item.body
