"""Write ``store.core_tables`` from the models: ``python -m medsleep.store.gen_core_tables``.

The models (``store.models``) are the one place the schema is declared. Building them costs
every process that loads them SQLModel, SQLAlchemy's ORM and the class machinery (~0.1 s of
start-up, measured), though the library's queries are all Core. So the library takes its
``Table`` objects from ``store.core_tables``, generated here from the models; a test holds the
generated file equal to what this writes, and both schemas to the same DDL on every dialect.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint
from sqlalchemy.types import TypeEngine

TARGET = Path(__file__).with_name("core_tables.py")
HEADER = '''"""The store's tables as SQLAlchemy Core ``Table`` objects, without SQLModel or the ORM.

GENERATED from ``store.models`` by ``python -m medsleep.store.gen_core_tables``: do not edit
(``tests/store/test_core_tables.py`` fails when this file and the models differ).
"""

from __future__ import annotations

from sqlalchemy import {names}

METADATA = MetaData()
'''


def q(value: object) -> str:
    """``repr`` with double quotes for strings, as the house style writes them."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def type_source(kind: TypeEngine[object]) -> str:
    """A column type as source; SQLModel's ``AutoString`` is a plain ``String``."""
    base = type(kind).__name__
    if base == "AutoString":
        length = getattr(kind, "length", None)
        text = f"String({length})" if length else "String()"
    else:
        text = repr(kind)
    for dialect, variant in getattr(kind, "_variant_mapping", {}).items():
        text += f".with_variant({type_source(variant)}, {q(dialect)})"
    return text


def column_source(column: Column[object]) -> str:
    parts = [q(column.name), type_source(column.type)]
    if column.primary_key:
        parts.append("primary_key=True")
    parts.append(f"nullable={column.nullable}")
    if column.autoincrement != "auto":
        parts.append(f"autoincrement={column.autoincrement!r}")
    if column.default is not None:
        parts.append(f"default={q(column.default.arg)}")  # type: ignore[attr-defined]
    if column.server_default is not None:
        parts.append(f"server_default={q(column.server_default.arg)}")  # type: ignore[attr-defined]
    return f"    Column({', '.join(parts)}),"


def table_source(table: Table) -> str:
    name = table.name.upper()
    lines = [f"{name} = Table(", f"    {q(table.name)},", "    METADATA,"]
    lines += [column_source(column) for column in table.c]
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        assert isinstance(index, Index)
        columns = ", ".join(q(c.name) for c in index.columns)
        unique = ", unique=True" if index.unique else ""
        lines.append(f"    Index({q(index.name)}, {columns}{unique}),")
    for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
        if isinstance(constraint, UniqueConstraint):
            columns = ", ".join(q(c.name) for c in constraint.columns)
            lines.append(f"    UniqueConstraint({columns}, name={q(constraint.name)}),")
    for option, value in sorted(table.dialect_kwargs.items()):
        lines.append(f"    {option}={q(value)},")
    lines.append(")")
    return "\n".join(lines)


def source(metadata: MetaData) -> str:
    """The module's text (formatted by ``ruff format`` afterwards)."""
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    body = "".join(f"\n{table_source(table)}\n" for table in tables)
    names = sorted(set(re.findall(r"\b([A-Z]\w+)\(", body)) | {"MetaData"})
    return HEADER.format(names=", ".join(names)) + body


def model_metadata() -> MetaData:
    from sqlmodel import SQLModel

    import medsleep.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

    return SQLModel.metadata


def main() -> None:
    TARGET.write_text(source(model_metadata()))
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(TARGET)], check=True)
    sys.stdout.write(f"wrote {TARGET}\n")


if __name__ == "__main__":
    main()
