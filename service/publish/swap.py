"""Swap a dataset's staging tables in for its live tables, all in one transaction.

Renames are catalog-only, so the swap holds its ACCESS EXCLUSIVE locks for
milliseconds. A reader blocked on the old table re-resolves the name after
commit and reads the new one, so readers see the old version or the new one,
never a mix, an empty table or a missing one. The old tables are moved aside
and dropped only after the commit. Users' views on the live tables are created
again on the new ones in the same transaction (:mod:`service.publish.dependents`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

import psycopg
from psycopg import sql

from service.load import names
from service.load.names import STAGING
from service.publish import dependents

log = logging.getLogger(__name__)
#: How long the swap waits for readers holding the old tables before retrying.
LOCK_TIMEOUT = "15s"
#: Seconds the swap tries to take all its locks at once before it waits in line for them
#: (see :func:`lock_all`), and between two tries.
LOCK_TRY_S = 10.0
LOCK_RETRY_S = 0.02


def retired_name(dataset: str, table: str, load_id: int) -> str:
    return names.retired_table(dataset, table, load_id)


def swap(conn: psycopg.Connection, dataset: str, load_id: int,
         tables: Mapping[str, str], *, without: Iterable[str] = ()) -> list[str]:
    """Publish each staging table of ``tables`` (live ``schema.table`` → staging table);
    returns the retired tables to drop (or keep) after commit.

    ``without``: live tables the new version has no counterpart for (levels it did not
    choose, a lookup table when it was loaded without one); they are retired with the
    others, so that they can be kept with the version they belong to. Call inside a
    transaction; keep its grants on the new tables, and its users' views, re-created on
    them. Anything else depending on a live table, and anything at all on one of
    ``without``, raises :class:`~service.errors.PublishBlocked` before anything changed.
    """
    limit_lock_wait(conn)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"geoload.publish:{dataset}",))
    alone = list(dict.fromkeys(target for target in without if target not in tables))
    dependents.check_removable(conn, dataset, [target for target in alone
                                               if _exists(conn, *target.split(".", 1))])
    views = dependents.views_on(conn, dataset, list(tables))
    dependents.drop(conn, views)  # a reader locks a view before its tables: views first
    live = [tuple(target.split(".", 1)) for target in [*tables, *alone]]
    lock_all(conn, [(schema, table) for schema, table in live if _exists(conn, schema, table)])
    retired = []
    for target, staging_table in [*tables.items(), *((t, None) for t in alone)]:
        schema, table = target.split(".", 1)
        old = retired_name(dataset, table, load_id)
        had_live = _retire(conn, schema, table, old)
        if staging_table is not None:
            _install(conn, staging_table, schema, table)
        if had_live:
            if staging_table is not None:
                _copy_grants(conn, sql.Identifier(STAGING, old), sql.Identifier(schema, table))
            retired.append(old)
    dependents.check_none_on(conn, dataset, [f"{STAGING}.{name}" for name in retired])
    dependents.create(conn, dataset, views)
    return retired


def lock_all(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> None:
    """ACCESS EXCLUSIVE locks on every live table (schema, name), all at once or none.

    Renaming table by table, the swap would hold one table while waiting for the next, and
    a reader whose one statement reads them in the other order (a lookup table joined to
    its data table, ``adm_2`` joined to ``adm_1``) would deadlock with it: PostgreSQL then
    aborts one of them, often the reader. So the locks are tried together without waiting
    (a savepoint gives back a partial set), again every :data:`LOCK_RETRY_S` until the lock
    timeout is near; only then does the swap wait in line as before.
    """
    if not tables:
        return
    statement = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(schema, name) for schema, name in tables))
    deadline = time.monotonic() + LOCK_TRY_S
    while time.monotonic() < deadline:
        try:
            with conn.transaction():
                conn.execute(statement + sql.SQL(" NOWAIT"))
            return
        except psycopg.errors.LockNotAvailable:
            time.sleep(LOCK_RETRY_S)
    conn.execute(statement)


def limit_lock_wait(conn: psycopg.Connection, timeout: str | None = None) -> None:
    """Within the current transaction, give up on a lock after ``timeout`` (by default
    :data:`LOCK_TIMEOUT`)."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
        sql.Literal(timeout or LOCK_TIMEOUT)))


def _exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))",
                       (schema, table)).fetchone()
    return row is not None and row[0] is not None


def _retire(conn: psycopg.Connection, schema: str, table: str, retired: str) -> bool:
    if not _exists(conn, schema, table):
        return False
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(schema, table), sql.Identifier(retired)))
    rename_indexes(conn, schema, retired, table, retired)
    conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
        sql.Identifier(schema, retired), sql.Identifier(STAGING)))
    return True


def _install(conn: psycopg.Connection, staging_table: str, schema: str, table: str) -> None:
    conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
        sql.Identifier(STAGING, staging_table), sql.Identifier(schema)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(schema, staging_table), sql.Identifier(table)))
    rename_indexes(conn, schema, table, staging_table, table)


def rename_indexes(conn: psycopg.Connection, schema: str, table: str, old_prefix: str,
                    new_prefix: str) -> None:
    """``<old_prefix>_pkey`` → ``<new_prefix>_pkey`` and so on, so names stay canonical."""
    rows = conn.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = format('%%I.%%I', %s::text, %s::text)::regclass",
        (schema, table)).fetchall()
    for (name,) in rows:
        if name.startswith(old_prefix + "_"):
            new = (new_prefix + name[len(old_prefix):])[:63]
            conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, name), sql.Identifier(new)))


def _copy_grants(conn: psycopg.Connection, source: sql.Identifier,
                 target: sql.Identifier) -> None:
    """Readers granted SELECT on the old table keep it on the new one."""
    dependents.grant(conn, target, dependents.grants_of(conn, source))


def drop_retired(conn: psycopg.Connection, dataset: str) -> list[str]:
    """Drop every retired table of ``dataset``; one still in use is left for the sweep.

    Only a lock timeout is tolerated. A lost connection raises, so that the message is
    retried and its retry, finding the load published, drops what is left.
    """
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s "
                        "AND tablename LIKE %s", (STAGING, f"{dataset}\\_\\_%\\_\\_retired\\_l%")
                        ).fetchall()
    return drop_staged(conn, [name for (name,) in rows])


def drop_staged(conn: psycopg.Connection, names: Iterable[str], *, timeout: str | None = None,
                keep: Callable[[str], bool] | None = None) -> list[str]:
    """Drop tables of the staging schema, each in its own transaction; returns those dropped.

    One still in use (a lock timeout, ``timeout``) is left for the sweep. ``keep``, asked
    once the table is locked, spares a table that turned out to be needed after all.
    Only a lock timeout is tolerated: a lost connection raises, so the caller is retried.
    """
    dropped = []
    for name in names:
        table = sql.Identifier(STAGING, name)
        try:
            with conn.transaction():
                limit_lock_wait(conn, timeout)
                if not _exists(conn, STAGING, name):
                    continue
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
                if keep is not None and keep(name):
                    continue
                conn.execute(sql.SQL("DROP TABLE {}").format(table))
            dropped.append(name)
        except psycopg.errors.LockNotAvailable as exc:
            log.warning("left table %s.%s for later: %s", STAGING, name, exc)
        except psycopg.errors.UndefinedTable:
            pass  # dropped meanwhile by another step or the sweep
    return dropped
