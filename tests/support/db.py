"""Reading what a test needs straight from PostgreSQL, to check the code under test by."""

from __future__ import annotations

from typing import Any

import psycopg


def one(conn: psycopg.Connection, query: str, *params: Any) -> Any:
    """The single value (or row, if it has several columns) ``query`` returns."""
    row = conn.execute(query, params).fetchone()  # type: ignore[call-overload]
    assert row is not None, query
    return row[0] if len(row) == 1 else tuple(row)
