"""NDJSON read as blocks for ``--workers``: the same records as reading line by line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medsleep.ingest import sources
from medsleep.ingest.sources import InputRecord, block_records, ndjson_blocks, read_records


def _via_blocks(name: str) -> list[InputRecord]:
    out: list[InputRecord] = []
    for item in ndjson_blocks(name):
        out.extend(block_records(item) if isinstance(item, sources.NdjsonBlock) else [item])
    return out


@pytest.mark.parametrize("buffer", [7, 64, 1 << 20])
def test_blocks_give_the_records_lines_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buffer: int
) -> None:
    monkeypatch.setattr(sources, "_READ_BUFFER", buffer)
    monkeypatch.setattr(sources, "_BLOCK_LIMIT", 4 * buffer)
    lines = [b'{"a": %d}' % i for i in range(40)]
    breaks = [b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n"]
    data = b"\xef\xbb\xbf" + b"".join(line + breaks[i % 5] for i, line in enumerate(lines))
    path = tmp_path / "x.ndjson"
    path.write_bytes(data + b'{"last": 1}')  # no final line break
    assert _via_blocks(str(path)) == list(read_records(str(path)))


def test_an_unreadable_file_ends_in_one_error_record(tmp_path: Path) -> None:
    (record,) = _via_blocks(str(tmp_path / "gone.ndjson"))
    assert record.error is not None
    assert record.error.startswith(sources.FILE_ERROR)


@given(st.binary(max_size=60).map(lambda b: b.replace(b"a", b"\r").replace(b"b", b"\n")))
def test_line_count_is_the_number_of_lines_splitlines_gives(data: bytes) -> None:
    assert sources.line_count(data) == len(data.splitlines())


def test_a_regular_files_blocks_go_as_offsets_a_gz_files_as_bytes(tmp_path: Path) -> None:
    data = b"".join(b'{"a": %d}\n' % i for i in range(10))
    plain, packed = tmp_path / "x.ndjson", tmp_path / "x.ndjson.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    (by_offset,) = ndjson_blocks(str(plain))
    assert (by_offset.data, by_offset.offset, by_offset.length) == (b"", 0, len(data))
    (by_bytes,) = ndjson_blocks(str(packed))
    assert by_bytes.data == data
    assert list(block_records(by_offset)) == list(read_records(str(plain)))
    assert [r.raw for r in block_records(by_bytes)] == [r.raw for r in read_records(str(plain))]


def test_a_file_cut_short_after_its_blocks_were_cut_ends_in_an_error_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "_READ_BUFFER", 64)
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"".join(b'{"a": %d}\n' % i for i in range(40)))
    blocks = [b for b in ndjson_blocks(str(path)) if isinstance(b, sources.NdjsonBlock)]
    assert len(blocks) > 2
    assert all(b.data == b"" for b in blocks)
    path.write_bytes(path.read_bytes()[: blocks[1].offset + 5])  # cut inside the second
    first = list(block_records(blocks[0]))
    (error,) = block_records(blocks[1])
    assert [r.error for r in first] == [None] * len(first)
    assert error.error is not None
    assert error.error.startswith(sources.FILE_ERROR)
    assert f"after line {blocks[1].first_line - 1}" in error.error
    assert "cut short" in error.error
