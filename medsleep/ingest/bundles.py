"""FHIR Bundles read entry by entry, each entry handed on by its ``resourceType``.

Two ways in, one way out. A Bundle of up to ``WHOLE_LIMIT`` bytes is decoded whole with
msgspec into entries whose ``resource`` is left as raw bytes (``msgspec.Raw``): it finds the
entries about five times faster than orjson builds them, and a skipped Claim or Encounter is
never built at all. A larger Bundle is streamed with ijson (yajl2_c): one entry at a time, so
peak memory does not grow with the Bundle. Both hand every entry to :func:`entry_record`,
the one place that decides by ``resourceType`` what an entry becomes (``ENTRY_READERS``).

``urn:uuid`` subjects resolve to the ``Type/id`` of the entry whose ``fullUrl`` they name,
wherever that entry is: the whole path knows every entry before it yields one; the stream
sets an Observation aside (spooled, not held in memory) until its subject's entry has been
read, and hands it on at the end of the Bundle with whatever did resolve.
"""

from __future__ import annotations

import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

import ijson
import msgspec
import orjson
from msgspec import UNSET, Struct, UnsetType

from medsleep.ingest.records import InputRecord

WHOLE_LIMIT = 16 * 2**20  # bytes: a Bundle up to this size is decoded whole (fast path)
# What an Observation.subject may reference (R4, plus R5's additions): only these entries are
# remembered as targets, so a streamed Bundle of 200k entries keeps a few ids, not 200k.
SUBJECT_TYPES = frozenset(
    {
        "Patient",
        "Group",
        "Device",
        "Location",
        "Organization",
        "Procedure",
        "Practitioner",
        "Medication",
        "Substance",
        "BiologicallyDerivedProduct",
        "NutritionProduct",
    }
)
_BUNDLE_START = re.compile(rb'\A\s*(?:\xef\xbb\xbf)?\s*\{\s*"resourceType"\s*:\s*"Bundle"')
_SPOOL_IN_MEMORY = 8 * 2**20  # set-aside Observations beyond this go to a temporary file


class _Entry(Struct, gc=False):
    fullUrl: str | None | UnsetType = UNSET
    resource: msgspec.Raw | UnsetType = UNSET  # a JSON null too (msgspec: no Raw | None)


class _Bundle(Struct, gc=False):
    resourceType: str | UnsetType = UNSET
    entry: list[_Entry] | None | UnsetType = UNSET


class _Head(Struct, gc=False):
    resourceType: str | None | UnsetType = UNSET
    id: object = UNSET


_decode_bundle = msgspec.json.Decoder(_Bundle).decode
_decode_head = msgspec.json.Decoder(_Head).decode


class NotDecodedWhole(Exception):
    """The document is not the plain shape the whole path takes: the caller reads it with
    orjson, which names the error precisely."""


class BundleEntry:
    """One entry's resource, parsed only when someone asks for it."""

    __slots__ = ("_raw", "_resource", "full_url", "nbytes", "position", "resource_type", "source")

    def __init__(
        self,
        source: str,
        position: str,
        full_url: str | None,
        resource_type: object,
        nbytes: int,
        raw: msgspec.Raw | None = None,
        resource: dict[str, Any] | None = None,
    ) -> None:
        self.source, self.position, self.full_url = source, position, full_url
        self.resource_type, self.nbytes = resource_type, nbytes
        self._raw, self._resource = raw, resource

    def resource(self) -> dict[str, Any]:
        if self._resource is None:
            assert self._raw is not None
            self._resource = orjson.loads(memoryview(self._raw))
        return self._resource

    def text(self) -> bytes:
        """The resource as compact JSON (what is stored as the reading's original text)."""
        return orjson.dumps(self.resource())


Resolve = Callable[[str], str | None]
EntryReader = Callable[[BundleEntry, Resolve], InputRecord]


def _observation_record(entry: BundleEntry, resolve: Resolve) -> InputRecord:
    # Raw JSON, not the parsed dict: the record takes the typed fast path (fhir.fastpath).
    try:
        subject = entry.resource().get("subject")
    except orjson.JSONDecodeError as exc:  # what msgspec let through (e.g. invalid UTF-8)
        raw = bytes(entry._raw or b"")
        return InputRecord(
            entry.source, entry.position, raw, error=f"invalid JSON: {exc}", nbytes=entry.nbytes
        )
    ref = subject.get("reference") if isinstance(subject, dict) else None
    return InputRecord(
        entry.source,
        entry.position,
        entry.text(),
        full_url=entry.full_url,
        subject_target=resolve(ref) if isinstance(ref, str) else None,
        nbytes=entry.nbytes,
    )


def _skipped_record(entry: BundleEntry, _resolve: Resolve) -> InputRecord:
    # Counted as skipped, never built nor re-serialised (in Synthea Bundles these are most
    # of the bytes: claims, encounters, ...).
    kind = {"resourceType": entry.resource_type}
    return InputRecord(entry.source, entry.position, b"", resource=kind, nbytes=entry.nbytes)


def _patient_record(entry: BundleEntry, _resolve: Resolve) -> InputRecord:
    # A Patient gives the dashboard's header (ingest.patients); its entry's urn:uuid is the
    # id readings' subjects resolve to when it has none of its own.
    try:
        resource = entry.resource()
    except orjson.JSONDecodeError as exc:  # what msgspec let through (e.g. invalid UTF-8)
        raw = bytes(entry._raw or b"")
        return InputRecord(
            entry.source, entry.position, raw, error=f"invalid JSON: {exc}", nbytes=entry.nbytes
        )
    return InputRecord(
        entry.source,
        entry.position,
        entry.text(),
        resource=resource,
        full_url=entry.full_url,
        nbytes=entry.nbytes,
    )


# What each kind of entry becomes; any other kind is skipped (and counted as such).
ENTRY_READERS: dict[str, EntryReader] = {
    "Observation": _observation_record,
    "Patient": _patient_record,
}


def entry_record(entry: BundleEntry, resolve: Resolve) -> InputRecord:
    """The record of one Bundle entry, by its ``resourceType``."""
    kind = entry.resource_type
    reader = ENTRY_READERS.get(kind) if isinstance(kind, str) else None
    return (reader or _skipped_record)(entry, resolve)


def _target(full_url: object, resource_type: object, resource_id: object) -> str | None:
    """``Type/id`` that a reference to ``full_url`` resolves to, for subject-like entries."""
    if not isinstance(full_url, str) or resource_type not in SUBJECT_TYPES:
        return None
    if isinstance(resource_id, str):
        return f"{resource_type}/{resource_id}"
    if full_url.startswith("urn:uuid:"):
        return f"{resource_type}/{full_url.removeprefix('urn:uuid:')}"
    return None


def _not_an_object(entry: BundleEntry, raw: bytes) -> InputRecord:
    return InputRecord(
        entry.source,
        entry.position,
        raw,
        error="entry.resource is not an object",
        nbytes=entry.nbytes,
    )


def read_whole_bundle(source: str, data: bytes, prefix: str) -> Iterator[InputRecord] | None:
    """The records of a Bundle in ``data``, decoded whole; None when ``data`` is one
    resource that is not a Bundle. Raises NotDecodedWhole for anything unusual."""
    try:
        bundle = _decode_bundle(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise NotDecodedWhole from exc
    if bundle.resourceType != "Bundle":
        return None
    entries = bundle.entry or []
    share = len(data) // max(1, len(entries))
    views: list[BundleEntry] = []
    targets: dict[str, str] = {}
    for index, item in enumerate(entries):
        if item.resource is UNSET:
            continue  # e.g. a DELETE request: no resource to read
        try:  # a resource that is not an object fails here: orjson's path names it
            head = _decode_head(item.resource)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if bytes(item.resource).strip() == b"null":
                continue
            raise NotDecodedWhole from exc
        full_url = item.fullUrl if isinstance(item.fullUrl, str) else None
        where = f"{prefix}entry[{index}]"
        views.append(BundleEntry(source, where, full_url, head.resourceType, share, item.resource))
        target = _target(full_url, head.resourceType, head.id)
        if target is not None:
            targets[full_url] = target  # type: ignore[index]
    return (entry_record(view, targets.get) for view in views)


def _parsed_entry(
    source: str, where: str, item: object, nbytes: int
) -> BundleEntry | InputRecord | None:
    """An entry already parsed (orjson, ijson): its view, an error record, or None when it
    has no resource to read (e.g. a DELETE request)."""
    if not isinstance(item, dict) or item.get("resource") is None:
        return None
    resource, full_url = item["resource"], item.get("fullUrl")
    full_url = full_url if isinstance(full_url, str) else None
    if not isinstance(resource, dict):
        view = BundleEntry(source, where, full_url, None, nbytes)
        return _not_an_object(view, orjson.dumps(resource))
    rtype = resource.get("resourceType")
    return BundleEntry(source, where, full_url, rtype, nbytes, resource=resource)


def bundle_entries_records(
    source: str, prefix: str, entries: list[Any], share: int
) -> Iterator[InputRecord]:
    """The records of a Bundle's entries parsed whole by orjson (what msgspec declined)."""
    views = [_parsed_entry(source, f"{prefix}entry[{i}]", e, share) for i, e in enumerate(entries)]
    targets: dict[str, str] = {}
    for view in views:
        if isinstance(view, BundleEntry):
            target = _target(view.full_url, view.resource_type, view.resource().get("id"))
            if target is not None:
                targets[view.full_url] = target  # type: ignore[index]
    for view in views:
        if isinstance(view, BundleEntry):
            yield entry_record(view, targets.get)
        elif view is not None:
            yield view


def looks_like_a_bundle(head: bytes) -> bool:
    """Whether a document starts as a Bundle whose first key is its ``resourceType`` (what
    FHIR serialisers write): only such a document is streamed."""
    return _BUNDLE_START.match(head) is not None


class _CountingReader:
    """``head`` then the rest of ``handle``, counting the bytes handed out."""

    def __init__(self, head: bytes, handle: IO[bytes]) -> None:
        self._head, self._handle, self.consumed = head, handle, 0

    def read(self, size: int = -1) -> bytes:
        if self._head:
            block, self._head = self._head[:size], self._head[size:]
        else:
            block = self._handle.read(size)
        self.consumed += len(block)
        return block


def stream_bundle(source: str, head: bytes, handle: IO[bytes]) -> Iterator[InputRecord]:
    """The records of a Bundle that starts with ``head`` and goes on in ``handle``, one
    entry at a time (flat memory). Invalid JSON part-way ends in one error record."""
    reader = _CountingReader(head.removeprefix(b"\xef\xbb\xbf"), handle)
    targets: dict[str, str] = {}
    waiting = _SetAside()
    counted = 0
    index = -1
    failure: BaseException | None = None
    try:
        for index, item in enumerate(ijson.items(reader, "entry.item", use_float=True)):
            nbytes, counted = reader.consumed - counted, reader.consumed
            view = _parsed_entry(source, f"entry[{index}]", item, nbytes)
            if not isinstance(view, BundleEntry):
                if view is not None:
                    yield view
                continue
            resource = view.resource()
            target = _target(view.full_url, view.resource_type, resource.get("id"))
            if target is not None:
                targets[view.full_url] = target  # type: ignore[index]
            if view.resource_type == "Observation":
                ref = _unresolved_subject(resource, targets)
                if ref is not None:
                    waiting.add(view, ref)
                    continue
            yield entry_record(view, targets.get)
    except ijson.JSONError as exc:
        yield InputRecord(
            source,
            f"after entry[{index}]" if index >= 0 else "document",
            b"",
            # the rest is not read: the file itself holds it, so say where reading stopped
            error=f"invalid JSON after entry[{index}] (in the first {reader.consumed:,} "
            f"bytes of {source}; the rest is not read): {exc}",
        )
    except (OSError, EOFError, zlib.error) as exc:  # reading the file itself failed
        failure = exc
    yield from waiting.records(targets)
    if failure is not None:
        raise failure


def _unresolved_subject(resource: dict[str, Any], targets: dict[str, str]) -> str | None:
    """The subject's ``urn:`` reference when no entry read so far resolves it."""
    subject = resource.get("subject")
    ref = subject.get("reference") if isinstance(subject, dict) else None
    if isinstance(ref, str) and ref.startswith("urn:") and ref not in targets:
        return ref
    return None


class _SetAside:
    """Observations whose subject's entry comes later in a streamed Bundle, spooled to a
    temporary file once they pass a few MB."""

    def __init__(self) -> None:
        self._spool: IO[bytes] | None = None

    def add(self, view: BundleEntry, ref: str) -> None:
        if self._spool is None:
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        fields = [view.source, view.position, view.full_url, view.nbytes, ref]
        self._spool.write(orjson.dumps([*fields, view.text().decode()]) + b"\n")

    def records(self, targets: dict[str, str]) -> Iterator[InputRecord]:
        if self._spool is None:
            return
        with self._spool as spool:
            spool.seek(0)
            for line in spool:
                source, position, full_url, nbytes, ref, text = orjson.loads(line)
                raw = text.encode()
                yield InputRecord(
                    source,
                    position,
                    raw,
                    full_url=full_url,
                    subject_target=targets.get(ref),
                    nbytes=nbytes,
                )
