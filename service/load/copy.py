"""Binary COPY of Arrow batches: WKB goes to PostGIS untouched, no hex, no text parsing.

Rows are encoded from Arrow columns by pgpq (Rust), not one Python tuple at a time:
psycopg's ``write_row`` cost 5 µs of CPU per GADM row (0.26 s for 54,000 rows), pgpq
0.11 s, which is CPU the two cores then spend on validation and on the server's COPY.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType

import numpy as np
import pgpq
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from service.load.columns import FID_SOURCE, GEOMETRY_COLUMN, Column
from service.load.staging import staged
from service.repair import wkb_parts

#: The Arrow type whose binary wire format is the PostgreSQL column's. A geometry goes as
#: bytea: in binary COPY PostGIS reads the field as (E)WKB.
ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(), "integer": pa.int32(), "bigint": pa.int64(),
    "smallint": pa.int16(), "double precision": pa.float64(), "real": pa.float32(),
    "boolean": pa.bool_(), "date": pa.date32(),
    # timestamptz and timestamp share one wire format: µs since 2000-01-01 UTC. A source
    # time without a zone is taken as UTC.
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
#: Geometry bytes encoded per piece, so that a chunk's COPY stream is never built whole.
PIECE_BYTES = 4 << 20
#: How a binary COPY field of zero bytes is written: its length, as a 32-bit integer.
EMPTY_FIELD = b"\x00\x00\x00\x00"
#: What ends a binary COPY stream: a field count of -1.
TRAILER = b"\xff\xff"


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
        self._schema = pa.schema([pa.field(c.name, wire_type(c.type)) for c in self.columns]
                                 + [pa.field(GEOMETRY_COLUMN, pa.binary())])
        self._encoder = pgpq.ArrowToPostgresBinaryEncoder(self._schema)
        self._cursor = cursor
        self._copy: psycopg.Copy | None = None
        self._manager: AbstractContextManager[psycopg.Copy] | None = None
        self.rows = 0

    def __enter__(self) -> "Copier":
        self._manager = self._cursor.copy(self._statement)
        self._copy = self._manager.__enter__()
        self._copy.write(self._encoder.write_header())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._manager is not None and self._copy is not None
        if kind is None:
            self._copy.write(self._encoder.finish())
        self._manager.__exit__(kind, exc, tb)

    def write(self, batch: pa.RecordBatch, wkb: np.ndarray) -> None:
        """Rows of ``batch`` (standardized by :func:`service.read.batches`) with repaired WKB."""
        assert self._copy is not None
        sizes = wkb_parts.lengths(wkb)
        for start, stop in _pieces(sizes):
            rows = batch.slice(start, stop - start)
            if stop - start == 1 and sizes[start] >= PIECE_BYTES:
                self._write_big_row(rows, wkb[start])
            else:
                self._copy.write(self._encoder.write_batch(self._rows(rows, wkb[start:stop])))
        self.rows += batch.num_rows

    def _rows(self, batch: pa.RecordBatch, wkb: np.ndarray) -> pa.RecordBatch:
        arrays = [_values(batch, c, field.type) for c, field in zip(self.columns, self._schema)]
        arrays.append(pa.array(wkb, type=pa.binary()))
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def _write_big_row(self, row: pa.RecordBatch, geometry: bytes) -> None:
        """One row whose geometry goes to the socket from its own bytes, never copied whole.

        pgpq holds rows back until it has 1 MB, so the row is encoded alone by a new
        encoder, with an empty geometry: its zero length, then the COPY trailer, end the
        output. That length becomes the geometry's and the bytes follow. Rows still held
        by the main encoder come later, which COPY doesn't mind. For the largest timezone
        (21.6 MB of WKB), the copies into Arrow and into pgpq's output had made this the
        chunk's peak: +62 MB, now +2 MB.
        """
        assert self._copy is not None
        alone = pgpq.ArrowToPostgresBinaryEncoder(self._schema)
        alone.write_header()
        encoded = alone.write_batch(self._rows(row, np.array([b""], dtype=object)))
        encoded += alone.finish()
        assert encoded.endswith(EMPTY_FIELD + TRAILER), "pgpq changed how it ends a row"
        self._copy.write(encoded[:-len(EMPTY_FIELD + TRAILER)] + len(geometry).to_bytes(4, "big"))
        self._copy.write(geometry)


def wire_type(pg_type: str) -> pa.DataType:
    """The Arrow type a column of ``pg_type`` is sent as; unknown types go as text."""
    return ARROW_TYPES.get(pg_type, pa.string())


def _values(batch: pa.RecordBatch, column: Column, wanted: pa.DataType) -> pa.Array:
    """The column's values from its source field, as ``wanted``; NULLs when the source
    lacks the field (the catalog expects it, upstream dropped it)."""
    if column.source is None:
        return pa.nulls(batch.num_rows, wanted)
    return _as_wire(batch.column("__fid" if column.source == FID_SOURCE else column.source),
                    wanted)


def _as_wire(column: pa.Array, wanted: pa.DataType) -> pa.Array:
    if column.type == wanted:
        return column
    if pa.types.is_timestamp(column.type) and column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    return column.cast(wanted)


def _pieces(sizes: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges holding about :data:`PIECE_BYTES` of geometry each; a
    bigger geometry is a piece alone."""
    ends = np.cumsum(sizes)
    start = 0
    while start < len(sizes):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + PIECE_BYTES, side="right")))
        yield start, stop
        start = stop
