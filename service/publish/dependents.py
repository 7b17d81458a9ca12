"""What users build on the live tables, and how a swap carries it over to the new tables.

A view is bound to a table's OID, not to its name: after a swap it would keep reading
the retired table, and that table could not be dropped. So plain views on a live
table, and views on those views, are dropped and created again on the new tables in
the swap's transaction, with their owner, options, comments and grants. Anything else
that depends on a live table (a materialized view, a foreign key from a user's table,
a SQL function's body) can't be carried over: the publish stops before the swap and
names it, and the live tables stay as they are.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from service.errors import PublishBlocked, TransientError
from service.postgres import local_setting

#: Privileges a grant is copied with (``MAINTAIN`` and the like are left to the owner).
PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

#: SQLSTATE class of errors a view's text can meet on the new tables: a column gone, a type
#: changed, a privilege missing.
SYNTAX_OR_ACCESS = "42"

#: What depends on the relations ``%s``: views to carry over, and everything else, named.
#: An object of the relation itself (its own rules and constraints) is not a dependent.
_DEPENDENTS = """
SELECT DISTINCT d.refobjid::int8, coalesce(v.relkind = 'v', false), v.oid::int8,
       CASE WHEN v.oid IS NOT NULL THEN pg_describe_object('pg_class'::regclass, v.oid, 0)
            ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END
FROM pg_depend d
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_class v ON v.oid = r.ev_class
LEFT JOIN pg_constraint c ON d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%s::oid[]) AND d.deptype = 'n'
  AND r.ev_class IS DISTINCT FROM d.refobjid AND c.conrelid IS DISTINCT FROM d.refobjid
"""

#: A view geoload can't re-create as it was: one with triggers, rules or column defaults
#: (they would be lost), or whose owner geoload's role can't act as.
_UNMOVABLE = """
SELECT pg_describe_object('pg_class'::regclass, v.oid, 0) || CASE
    WHEN NOT pg_has_role(v.relowner, 'MEMBER')
        THEN format(' (owned by %%s, a role %%s is not a member of)', v.relowner::regrole,
                    current_user)
    ELSE ' (it has INSTEAD OF triggers, rules or column defaults)' END
FROM pg_class v WHERE v.oid = ANY(%s::oid[]) AND (NOT pg_has_role(v.relowner, 'MEMBER')
    OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = v.oid)
    OR EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = v.oid AND r.rulename <> '_RETURN')
    OR EXISTS (SELECT 1 FROM pg_attrdef a WHERE a.adrelid = v.oid))
"""

_VIEW = """
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner)::text, pg_get_viewdef(c.oid),
       coalesce(c.reloptions, '{}'), obj_description(c.oid, 'pg_class'),
       coalesce((SELECT array_agg(ARRAY[a.attname::text, d.description] ORDER BY a.attnum)
                 FROM pg_attribute a JOIN pg_description d ON d.objoid = c.oid
                 AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
                 WHERE a.attrelid = c.oid), '{}')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s::oid
"""

_GRANTS = """
SELECT x.privilege_type, r.rolname, NULL::text, x.is_grantable
FROM pg_class c, aclexplode(c.relacl) x LEFT JOIN pg_roles r ON r.oid = x.grantee
WHERE c.oid = %(oid)s::oid AND x.grantee <> c.relowner
UNION ALL
SELECT x.privilege_type, r.rolname, a.attname::text, x.is_grantable
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid, aclexplode(a.attacl) x
LEFT JOIN pg_roles r ON r.oid = x.grantee
WHERE c.oid = %(oid)s::oid AND %(columns)s AND a.attacl IS NOT NULL AND x.grantee <> c.relowner
"""


@dataclass(frozen=True)
class Grant:
    """A privilege on a relation (or one of its columns); ``grantee`` None is PUBLIC."""

    privilege: str
    grantee: str | None
    column: str | None = None
    grantable: bool = False


@dataclass(frozen=True)
class View:
    """A view as it must be created again: definition with every name schema-qualified."""

    schema: str
    name: str
    owner: str
    definition: str
    options: tuple[str, ...]
    comment: str | None
    column_comments: tuple[tuple[str, str], ...]
    grants: tuple[Grant, ...]

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def grants_of(conn: psycopg.Connection, relation: sql.Composable) -> list[Grant]:
    """Who may do what on the table ``relation``, besides its owner."""
    row = conn.execute(sql.SQL("SELECT {}::regclass::oid::int8").format(
        sql.Literal(relation.as_string(conn)))).fetchone()
    assert row is not None
    return _grants(conn, int(row[0]), columns=False)


def _grants(conn: psycopg.Connection, oid: int, *, columns: bool) -> list[Grant]:
    rows = conn.execute(_GRANTS, {"oid": oid, "columns": columns}).fetchall()
    return [Grant(p, role, column, grantable) for p, role, column, grantable in rows
            if p in PRIVILEGES]


def grant(conn: psycopg.Connection, target: sql.Composable, grants: Iterable[Grant]) -> None:
    for g in grants:
        conn.execute(sql.SQL("GRANT {}{} ON {} TO {}{}").format(
            sql.SQL(g.privilege),
            sql.SQL(" ({})").format(sql.Identifier(g.column)) if g.column else sql.SQL(""),
            target, sql.Identifier(g.grantee) if g.grantee else sql.SQL("PUBLIC"),
            sql.SQL(" WITH GRANT OPTION") if g.grantable else sql.SQL("")))


def views_on(conn: psycopg.Connection, dataset: str, tables: Sequence[str]) -> list[View]:
    """The views that depend on ``tables`` (``schema.table``), each after those it reads.

    Each is read (locked) as its owner before it is described, so that its definition
    can't change until the swap commits; a view is locked before the tables it reads,
    as a reader of it locks them. Raises :class:`PublishBlocked` naming every other
    dependent, before anything changed.
    """
    with qualified_names(conn):
        order, blockers = _walk(conn, _oids(conn, tables))
        blockers += [row[0] for row in conn.execute(_UNMOVABLE, (order,))]
        if blockers:
            raise _blocked(dataset, tables, blockers)
        for oid in order:
            schema, name, owner = _head(conn, oid)
            _as_owner(conn, dataset, owner, f"{schema}.{name}", sql.SQL(
                "SELECT FROM {} LIMIT 0").format(sql.Identifier(schema, name)))
        return [_describe(conn, oid) for oid in order]


def check_removable(conn: psycopg.Connection, dataset: str, tables: Sequence[str]) -> None:
    """Nothing depends on ``tables``, live tables a publish retires without a successor
    (levels the new load did not choose): a view on one would have no table to move to, so
    it stops the publish before the swap, named, like anything else the swap can't carry."""
    found = []
    with qualified_names(conn):
        for table in tables:
            order, blockers = _walk(conn, _oids(conn, [table]))
            names = [*blockers, *(f"view {schema}.{name}" for schema, name, _ in
                                  (_head(conn, oid) for oid in order))]
            if names:
                found.append(f"{', '.join(names)} on {table}")
    if found:
        raise PublishBlocked(
            f"can't publish: {'; '.join(found)}: this load does not publish "
            f"{'that table' if len(found) == 1 else 'those tables'} (it chose other levels), "
            "so the swap would leave what depends on it without a table",
            dataset=dataset,
            hint="drop or change them, or load these levels too, or load into another "
                 "schema (--schema); the live tables are unchanged")


def check_none_on(conn: psycopg.Connection, dataset: str, tables: Sequence[str]) -> None:
    """Nothing depends on ``tables`` any more: else one was created during the swap, which
    is then retried (it sees the newcomer the next time)."""
    order, blockers = _walk(conn, _oids(conn, tables))
    if order or blockers:
        raise TransientError(f"objects were created on {', '.join(tables)} while they were "
                             "being published", dataset=dataset,
                             hint="nothing to do: the publish is retried")


def drop(conn: psycopg.Connection, views: Sequence[View]) -> None:
    if views:
        conn.execute(sql.SQL("DROP VIEW {}").format(
            sql.SQL(", ").join(v.identifier for v in views)))


def create(conn: psycopg.Connection, dataset: str, views: Sequence[View]) -> None:
    """Create ``views`` again, as their owners, on whatever their names now resolve to."""
    with qualified_names(conn):
        for view in views:
            _as_owner(conn, dataset, view.owner, f"{view.schema}.{view.name}",
                      _create_statement(view))
            if view.comment is not None:
                conn.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(
                    view.identifier, sql.Literal(view.comment)))
            for column, text in view.column_comments:
                conn.execute(sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                    sql.Identifier(view.schema, view.name, column), sql.Literal(text)))
            grant(conn, view.identifier, view.grants)


def _create_statement(view: View) -> sql.Composed:
    options = [option.split("=", 1) for option in view.options]
    with_options = sql.SQL(" WITH ({})").format(sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(key), sql.Literal(value))
        for key, value in options)) if options else sql.SQL("")
    # The definition is PostgreSQL's own text of the view (pg_get_viewdef), not input.
    return (sql.SQL("CREATE VIEW {}{} AS ").format(view.identifier, with_options)
            + sql.SQL(view.definition.rstrip().rstrip(";")))


def _as_owner(conn: psycopg.Connection, dataset: str, owner: str, name: str,
              statement: sql.Composed) -> None:
    """Run ``statement`` as the view's owner, with the rights it was created with."""
    (me,) = conn.execute("SELECT current_user").fetchone() or ("",)
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        if not (exc.sqlstate or "").startswith(SYNTAX_OR_ACCESS):
            raise
        raise _blocked(dataset, [], [f"view {name} (as its owner {owner}: "
                                     f"{exc.diag.message_primary})"]) from exc
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(me)))


def qualified_names(conn: psycopg.Connection) -> AbstractContextManager[None]:
    """An empty search_path for the block: catalog text names every object with its schema."""
    return local_setting(conn, "search_path", "")


def _oids(conn: psycopg.Connection, tables: Sequence[str]) -> list[int]:
    rows = conn.execute("SELECT to_regclass(format('%%I.%%I', split_part(t, '.', 1), "
                        "substr(t, strpos(t, '.') + 1)))::oid::int8 FROM unnest(%s::text[]) t",
                        (list(tables),)).fetchall()
    return [int(row[0]) for row in rows if row[0] is not None]


def _head(conn: psycopg.Connection, oid: int) -> tuple[str, str, str]:
    row = conn.execute("SELECT n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text "
                       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE c.oid = %s", (oid,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _walk(conn: psycopg.Connection, roots: list[int]) -> tuple[list[int], list[str]]:
    """Every view that depends on ``roots``, directly or through other views, in creation
    order; and a description of every dependent that is not a plain view."""
    reads: dict[int, set[int]] = {}
    blockers: list[str] = []
    frontier = roots
    while frontier:
        found = conn.execute(_DEPENDENTS, (frontier,)).fetchall()
        frontier = []
        for referenced, is_view, view, description in found:
            if not is_view:
                blockers.append(description)
                continue
            if view not in reads:
                reads[view] = set()
                frontier.append(view)
            reads[view].add(referenced)
    graph = {view: {r for r in refs if r in reads} for view, refs in reads.items()}
    return list(graphlib.TopologicalSorter(graph).static_order()), sorted(set(blockers))


def _describe(conn: psycopg.Connection, oid: int) -> View:
    row = conn.execute(_VIEW, (oid,)).fetchone()
    assert row is not None
    schema, name, owner, definition, options, comment, column_comments = row
    return View(schema, name, owner, definition, tuple(options), comment,
                tuple((c, t) for c, t in column_comments),
                tuple(_grants(conn, oid, columns=True)))


def _blocked(dataset: str, tables: Sequence[str], objects: list[str]) -> PublishBlocked:
    on = f" on {', '.join(tables)}" if tables else ""
    return PublishBlocked(
        f"can't publish: {'; '.join(objects)} depend{'s' if len(objects) == 1 else ''}{on} "
        "in a way the swap can't carry over to the new tables",
        dataset=dataset,
        hint=f"drop or change them (geoload re-creates plain views on the new tables; create a "
             f"materialized view again after the load, point a foreign key at a table of your "
             f"own), then enqueue {dataset} again; the live tables are unchanged")
