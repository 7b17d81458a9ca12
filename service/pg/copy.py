"""Binary COPY of Arrow batches: WKB goes to PostGIS untouched, no hex, no text parsing."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from service.columns import FID_SOURCE, GEOMETRY_COLUMN, Column
from service.pg.staging import staged

#: In binary COPY PostGIS reads the geometry field as (E)WKB: it is sent as bytea.
GEOMETRY_WIRE_TYPE = "bytea"


class Copier:
    """One ``COPY … FROM STDIN (FORMAT BINARY)`` into a staging table.

    >>> with Copier(cur, "gadm__adm_0__l1", columns) as copier:
    ...     copier.write(batch, wkb)
    """

    def __init__(self, cursor: psycopg.Cursor, table: str, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        names = [sql.Identifier(c.name) for c in self.columns]
        names.append(sql.Identifier(GEOMETRY_COLUMN))
        self._statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            staged(table), sql.SQL(", ").join(names))
        self._cursor = cursor
        self._copy: psycopg.Copy | None = None
        self._manager: AbstractContextManager[psycopg.Copy] | None = None
        self.rows = 0

    def __enter__(self) -> "Copier":
        self._manager = self._cursor.copy(self._statement)
        self._copy = self._manager.__enter__()
        self._copy.set_types([c.type for c in self.columns] + [GEOMETRY_WIRE_TYPE])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._manager is not None
        self._manager.__exit__(*exc)  # type: ignore[arg-type]

    def write(self, batch: pa.RecordBatch, wkb: np.ndarray) -> None:
        """Rows of ``batch`` (standardized by :func:`service.read.batches`) with repaired WKB."""
        assert self._copy is not None
        values = [batch.column("__fid" if c.source == FID_SOURCE else c.source).to_pylist()
                  for c in self.columns]
        values.append(wkb.tolist())
        write_row = self._copy.write_row
        for row in zip(*values):
            write_row(row)
        self.rows += batch.num_rows
