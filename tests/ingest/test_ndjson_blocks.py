"""NDJSON read as blocks for ``--workers``: the same records as reading line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

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
