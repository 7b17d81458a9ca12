"""A load publishes exactly what it chose: the dataset's tables it did not choose, in its
schema, leave with the version they belonged to (issue 13: "the tables hold exactly what
was asked for")."""

from __future__ import annotations

import psycopg

from service.errors import PermanentError
from service.live import Live
from service.pipeline import failure
from service.pipeline.messages import FETCH, PLAN, PUBLISH, Next
from tests.support.driver import drain, new_run


def load(settings, **choices) -> dict[str, str]:
    """Run a gadm load's steps here; a step that fails for good fails the load, as the
    workers' failure path does."""
    run_id = new_run(settings, "gadm", **choices)
    try:
        drain(settings, [Next(FETCH, (run_id, "gadm")), Next(PLAN, (run_id, "gadm"))])
    except PermanentError as exc:
        failure.record_failure(settings, Live(settings), PUBLISH, [run_id, "gadm"],
                               type(exc).__name__, str(exc))
    with psycopg.connect(settings.database_url) as db:
        (status, error) = db.execute("SELECT status, error FROM geoload.loads WHERE run_id = %s",
                                     (run_id,)).fetchone()
    return {"run_id": run_id, "status": status, "error": error or ""}


def tables(settings, schema: str) -> dict[str, int]:
    with psycopg.connect(settings.database_url) as db:
        names = [t for (t,) in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s "
                                          "AND tablename LIKE 'adm\\_%%'", (schema,))]
        return {t: db.execute(f'SELECT count(*) FROM "{schema}"."{t}"').fetchone()[0]  # noqa: S608
                for t in sorted(names)}


def staging(settings) -> list[str]:
    with psycopg.connect(settings.database_url) as db:
        return [t for (t,) in db.execute("SELECT tablename FROM pg_tables "
                                         "WHERE schemaname = 'geoload_staging'")]


def test_fewer_levels_than_the_live_load_leave_exactly_those_levels(clean_db, upstream_files):
    _, manifest = upstream_files
    expected = manifest.gadm.features
    assert load(clean_db)["status"] == "published"
    assert set(tables(clean_db, "gadm")) == {f"adm_{k}" for k in range(6)}

    assert load(clean_db, levels=[0, 1])["status"] == "published"
    assert tables(clean_db, "gadm") == {"adm_0": expected["ADM_0"], "adm_1": expected["ADM_1"]}
    assert staging(clean_db) == []  # the levels left out were retired, then dropped


def test_other_schemas_keep_their_levels(clean_db, upstream_files):
    assert load(clean_db, levels=[0, 1, 2], schema="mine")["status"] == "published"
    assert load(clean_db, levels=[0])["status"] == "published"
    assert load(clean_db, levels=[0, 1])["status"] == "published"
    assert set(tables(clean_db, "mine")) == {"adm_0", "adm_1", "adm_2"}
    assert set(tables(clean_db, "gadm")) == {"adm_0", "adm_1"}


def test_a_view_on_a_level_left_out_stops_the_load_before_the_swap(clean_db, upstream_files):
    _, manifest = upstream_files
    assert load(clean_db)["status"] == "published"
    before = tables(clean_db, "gadm")
    with psycopg.connect(clean_db.database_url, autocommit=True) as db:
        db.execute("CREATE VIEW public.districts AS SELECT gid_3, name_3 FROM gadm.adm_3")
    try:
        failed = load(clean_db, levels=[0, 1])
        assert failed["status"] == "failed"
        assert "view public.districts on gadm.adm_3: this load does not publish" in \
            failed["error"], failed["error"]
        assert "gadm.adm_2" not in failed["error"]
        assert tables(clean_db, "gadm") == before  # the live version is untouched
        with psycopg.connect(clean_db.database_url) as db:
            assert db.execute("SELECT count(*) FROM public.districts").fetchone()[0] == \
                manifest.gadm.features["ADM_3"]
    finally:
        with psycopg.connect(clean_db.database_url, autocommit=True) as db:
            db.execute("DROP VIEW IF EXISTS public.districts")


def test_a_rollback_brings_back_the_levels_the_newer_load_left_out(clean_db, upstream_files):
    from dataclasses import replace

    from service import catalog
    from service.pipeline import versions
    from service.postgres import connect

    _, manifest = upstream_files
    settings = replace(clean_db, keep_versions=2)
    assert load(settings)["status"] == "published"
    assert load(settings, levels=[0, 1])["status"] == "published"
    assert set(tables(settings, "gadm")) == {"adm_0", "adm_1"}
    with connect(settings, autocommit=True) as conn:
        versions.rollback(conn, catalog.get("gadm"))
    assert tables(settings, "gadm") == {f"adm_{k}": manifest.gadm.features[f"ADM_{k}"]
                                        for k in range(6)}
