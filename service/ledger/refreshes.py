"""``geoload.refreshes``: the scheduled refresh's claims, and what it reads of past loads.

A decision to load a version is a claim: a row keyed on (dataset, version). Only the
check that inserted the key (or took over a claim that no longer stands) starts a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from service.ledger.records import TERMINAL, ClaimHolder, Known

_TAKE_OVER = (
    "UPDATE geoload.refreshes r SET run_id = NULL, claimed_by = %s, "
    "claimed_at = now(), attempts = r.attempts + 1 "
    "WHERE r.dataset = %s AND r.version = %s AND ("
    " (r.run_id IS NULL AND r.claimed_at < now() - make_interval(secs => %s))"
    " OR (r.run_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM geoload.loads l"
    "  WHERE l.run_id = r.run_id AND l.dataset = r.dataset"
    "  AND (l.status <> ALL(%s) OR l.load_id = (SELECT p.load_id FROM geoload.loads p"
    "   WHERE p.dataset = r.dataset AND p.status = 'published'"
    "   ORDER BY p.finished_at DESC LIMIT 1)))))"
    " RETURNING attempts")


def claim(conn: psycopg.Connection, dataset: str, version: str, claimer: str,
          stale_after_s: float) -> ClaimHolder | None:
    """Take the (dataset, version) key; None when taken, else who holds it.

    A claim is handed over when it no longer stands for the version: its claimer died
    before starting a run (``stale_after_s`` ago), or its load ended without being the
    live one (failed, superseded, or published and replaced since).
    """
    with conn.transaction():
        won = conn.execute(
            "INSERT INTO geoload.refreshes (dataset, version, claimed_by) VALUES (%s, %s, %s) "
            "ON CONFLICT (dataset, version) DO NOTHING RETURNING attempts",
            (dataset, version, claimer)).fetchone()
        if won is None:
            won = conn.execute(_TAKE_OVER, (claimer, dataset, version, stale_after_s,
                                            list(TERMINAL))).fetchone()
        if won is not None:
            return None
        holder = conn.execute("SELECT run_id, claimed_by FROM geoload.refreshes "
                              "WHERE dataset = %s AND version = %s",
                              (dataset, version)).fetchone()
    return ClaimHolder(*holder) if holder else ClaimHolder(None, "?")


def release(conn: psycopg.Connection, claims: list[tuple[str, str]]) -> None:
    """The run could not be started: free these (dataset, version) claims, so that the next
    check tries again."""
    for dataset, version in claims:
        conn.execute("DELETE FROM geoload.refreshes WHERE dataset = %s AND version = %s "
                     "AND run_id IS NULL", (dataset, version))


def attach(conn: psycopg.Connection, claims: list[tuple[str, str]], run_id: str) -> None:
    """The run these (dataset, version) claims started."""
    for dataset, version in claims:
        conn.execute("UPDATE geoload.refreshes SET run_id = %s WHERE dataset = %s AND version = %s",
                     (run_id, dataset, version))


_KNOWN = ("SELECT d.run_id, d.status, d.release, d.etag, d.last_modified, d.source_url, d.bytes, "
          "d.sha256 FROM geoload.loads d WHERE d.dataset = %s ")


#: Loads into one schema: ``''`` is the catalog's own, else a user's (``--schema``).
_IN_SCHEMA = "AND coalesce(d.target_schema, '') = %s "


def last_published(conn: psycopg.Connection, dataset: str, schema: str = "") -> Known | None:
    row = conn.execute(_KNOWN + _IN_SCHEMA + "AND d.status = 'published' "
                       "ORDER BY d.finished_at DESC LIMIT 1", (dataset, schema)).fetchone()
    return Known(*row) if row else None


def loading(conn: psycopg.Connection, dataset: str, schema: str = "") -> list[Known]:
    """Unfinished loads (into ``schema``) that already pinned the version they load."""
    rows = conn.execute(_KNOWN + _IN_SCHEMA + "AND d.status <> ALL(%s) AND d.sha256 IS NOT NULL",
                        (dataset, schema, list(TERMINAL))).fetchall()
    return [Known(*row) for row in rows]


@dataclass(frozen=True)
class Published:
    """A live load: its dataset, the schema it went into (``''``: the catalog's) and the
    options it was enqueued with (``geoload.loads.options``, None before they existed)."""

    dataset: str
    target_schema: str
    options: dict[str, Any] | None


def published(conn: psycopg.Connection) -> list[Published]:
    """Every live load, in every schema, with the options it was loaded with: what the
    scheduled refresh keeps current by default."""
    rows = conn.execute("SELECT v.dataset, v.target_schema, l.options FROM geoload.live v "
                        "JOIN geoload.loads l USING (load_id) "
                        "ORDER BY v.dataset, v.target_schema").fetchall()
    return [Published(*row) for row in rows]


def release_published(conn: psycopg.Connection, dataset: str, release: str | None,
                      schema: str = "") -> bool:
    """Whether a load of this release of ``dataset`` was ever published (into ``schema``)."""
    row = conn.execute("SELECT 1 FROM geoload.loads d WHERE d.dataset = %s "
                       "AND coalesce(d.target_schema, '') = %s AND d.status = 'published' "
                       "AND d.release IS NOT DISTINCT FROM %s LIMIT 1", (dataset, schema, release))
    return row.fetchone() is not None
