"""Earlier versions: kept when a publish replaces them, and rolled back to.

``GEOLOAD_KEEP_VERSIONS=N`` (default 0: none kept) keeps the last N versions of each
dataset in each schema under ``geoload_archive``. ``enqueue --rollback gadm`` swaps the
newest kept version back in through the same atomic swap a publish uses, as a run and a
load of its own (origin ``rollback``); the version it replaced is kept in turn, so a
second rollback undoes the first.

A kept version is every table its load published: the data tables and the lookup table,
so that a rollback brings lookups back with the data they were cut from. A rollback
takes one version out of the archive and puts one in: it never prunes, so the caller's
own ``GEOLOAD_KEEP_VERSIONS`` can't drop what the workers' setting keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from service import lookup
from service.catalog import Dataset
from service.catalog.options import LoadOptions
from service.errors import ConfigError
from service.ledger import archive as kept_versions
from service.ledger import loads, runs, schema
from service.ledger.archive import Kept
from service.load import staging
from service.publish import archive, swap


def keep(conn: psycopg.Connection, ds: Dataset, target_schema: str,
         previous: tuple[int, str | None] | None, tables: list[str], retired: list[str],
         new_load_id: int, limit: int) -> list[str]:
    """In the swap's transaction: move the tables ``previous`` published (now retired) to
    the archive, and drop kept versions beyond ``limit``; returns those kept now.

    ``tables``: every live table the swap replaced, the lookup table among them."""
    if limit <= 0:
        return []
    moved = _archive(conn, ds, target_schema, previous, tables, retired, new_load_id)
    _prune(conn, ds.name, target_schema, limit)
    return moved


def _archive(conn: psycopg.Connection, ds: Dataset, target_schema: str,
             previous: tuple[int, str | None] | None, tables: list[str], retired: list[str],
             new_load_id: int) -> list[str]:
    if previous is None:
        return []
    old_id, release = previous
    moved = []
    for target in dict.fromkeys(tables):  # once each, whatever the caller listed twice
        old = swap.retired_name(ds.stem, target.split(".", 1)[1], new_load_id)
        if old in retired:
            name = archive.archive_name(target, release, old_id)
            archive.keep(conn, old, name)
            moved.append(Kept(old_id, ds.name, target_schema, target, name, release))
    kept_versions.record(conn, moved)
    return [k.archive_table for k in moved]


def _prune(conn: psycopg.Connection, dataset: str, target_schema: str, limit: int) -> None:
    by_load: dict[int, list[str]] = {}
    for k in kept_versions.versions(conn, dataset, target_schema):
        by_load.setdefault(k.load_id, []).append(k.archive_table)
    for load_id in sorted(by_load, reverse=True)[limit:]:
        archive.drop(conn, by_load[load_id])
        kept_versions.forget(conn, load_id)


@dataclass(frozen=True)
class RolledBack:
    run_id: str
    dataset: str
    restored_load: int
    release: str | None
    tables: list[str]


def rollback(conn: psycopg.Connection, ds: Dataset, target_schema: str = "") -> RolledBack:
    """Put the newest kept version of ``ds`` (in ``target_schema``, '' for the catalog's)
    back, atomically, as a load of its own; the version it replaces is kept in its place."""
    schema.ensure(conn)
    if not kept_versions.versions(conn, ds.name, target_schema):
        raise ConfigError(f"no earlier version of {ds.name} is kept"
                          + (f" in schema {target_schema}" if target_schema else ""),
                          dataset=ds.name,
                          hint="set GEOLOAD_KEEP_VERSIONS=N on the workers before the "
                               "loads whose versions you want to keep")
    options = LoadOptions(schema=target_schema or None)
    run_id = runs.create(conn, [ds.name], {}, origin="rollback", options={ds.name: options})
    load = loads.get(conn, run_id, ds.name)
    assert load is not None
    try:
        result = _swap_back(conn, ds, target_schema, run_id, load.load_id)
    except Exception as exc:
        loads.fail(conn, load.load_id, str(exc), type(exc).__name__, "rollback")
        raise
    swap.drop_retired(conn, ds.stem)
    return result


def _swap_back(conn: psycopg.Connection, ds: Dataset, target_schema: str, run_id: str,
               load_id: int) -> RolledBack:
    """One transaction: the kept tables (lookup table included) staged, swapped in, the
    replaced ones kept."""
    with conn.transaction():
        candidates = kept_versions.versions(conn, ds.name, target_schema)
        restored = candidates[0].load_id
        tables = [k for k in candidates if k.load_id == restored]
        previous = kept_versions.previous_live(conn, ds.name, target_schema)
        kept_versions.restore_record(conn, run_id, ds.name, restored)
        staged = {}
        for k in tables:
            name = staging.staging_name(ds.stem, k.target_table, load_id)
            archive.stage(conn, k.archive_table, name)
            staged[k.target_table] = name
        kept_versions.forget(conn, restored)
        loads.take_live(conn, ds.name, load_id)
        options = LoadOptions(schema=target_schema or None)
        own_lookup = lookup.lookup_table(options.apply(ds))
        # What the restored version has no table for is retired and kept with the version
        # it replaces: levels it did not load, and, kept without one (GEOLOAD_LOOKUP=0),
        # the lookup table, which answers for no version but its own.
        without = [*options.every_table(ds), own_lookup]
        retired = swap.swap(conn, ds.stem, load_id, staged, without=without)
        _archive(conn, ds, target_schema, previous, [*staged, *without], retired, load_id)
    return RolledBack(run_id, ds.name, restored, tables[0].release, sorted(staged))
