"""The JSON behind every page, and the actions its buttons take.

Each page function returns plain data; :mod:`service.dashboard.endpoints` serves
it as JSON under ``/api/...`` and renders it through its template at the page's
path, so the API and the pages can't disagree. They are plain blocking functions
of their inputs (the query string, an action's fields, the path's parameters):
Starlette runs them on its thread pool. A part that can't be reached (RabbitMQ's
management API, say) is reported in an ``error`` field instead of failing the
whole page.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import quote

import psycopg

from service import catalog, lookup
from service.catalog.options import LoadOptions
from service.changes import key_of as changes_key
from service.dashboard import changes as changes_view
from service.dashboard import rates
from service.dashboard.context import Context
from service.dashboard.errors import HTTPError
from service.errors import (
    GeoloadError,
    NothingToRetry,
    ServiceUnavailable,
    UnknownDataset,
    UnknownRun,
)
from service.ledger import archive as kept_versions
from service.ledger import changes as stored_changes
from service.ledger import history
from service.ledger import runs as run_ledger
from service.ledger.archive import Kept
from service.ledger.history import LatestLoad, LiveLoad
from service.ledger.status import run_status
from service.live import HEARTBEAT_TTL_S
from service.pipeline import broker as messaging
from service.pipeline import dead_letters, refresh
from service.pipeline.cancel import cancel
from service.pipeline.start import retry, start
from service.postgres import reused
from service.publish import archive
from service.urls import mask

#: A worker silent for longer than this is shown as stale (it beats every 5 s).
STALE_AFTER_S = HEARTBEAT_TTL_S / 2
#: Dramatiq's Prometheus middleware listens here on each worker host (dramatiq_prom_port).
WORKER_METRICS_PORT = 9191


#: A page's query string: the last value of each parameter.
Query = Mapping[str, str]
#: An action's body: a form's fields or a JSON object.
Fields = Mapping[str, Any]


def _int_arg(query: Query, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return min(max(int(raw), low), high)
    except ValueError as exc:
        raise HTTPError(400, f"{name} must be a whole number, got {raw!r}") from exc


# --- pages ----------------------------------------------------------------------------------

def runs(ctx: Context, query: Query) -> dict[str, Any]:
    """Recent runs, newest first."""
    limit = _int_arg(query, "limit", 50, 1, 500)
    with ctx.db() as conn:
        found = [run_status(conn, ctx.live, run_id)
                 for run_id in run_ledger.recent(conn, limit)]
    at = rates.now()
    return {"runs": [rates.run_summary(run, at) for run in found if run is not None],
            "datasets": catalog.names()}


def run(ctx: Context, query: Query, run_id: str) -> dict[str, Any]:
    """One run: per dataset and layer, loaded of total, throughput and ETA."""
    with ctx.db() as conn:
        found = run_status(conn, ctx.live, run_id)
        if found is None:
            raise HTTPError(404, f"no run {run_id!r}", hint="see /runs for the runs there are")
        timings = history.layer_timings(conn, run_id)
        retried_by = history.retries_of(conn, run_id)
        reports = stored_changes.of_run(conn, run_id)
        live = history.published(conn)
    data = rates.run_detail(found, timings, rates.now())
    data["retried_by"] = retried_by
    for dataset in data["datasets"]:
        dataset["source_url"] = mask(dataset["source_url"]) if dataset["source_url"] else None
        now = live.get(dataset["dataset"])
        dataset["changes"] = changes_view.view(reports.get(dataset["dataset"]),
                                               now.load_id if now else None)
    return data


def datasets(ctx: Context, query: Query) -> dict[str, Any]:
    """What is loaded now, per catalog dataset, with the load that put it there, and what
    the scheduled refresh checks next."""
    with ctx.db() as conn:
        live = history.published(conn)
        elsewhere = history.published_elsewhere(conn)
        latest = history.latest(conn)
        kept = kept_versions.versions(conn)
        kept_bytes = archive.sizes(conn, [k.archive_table for k in kept])
        sizes = history.table_bytes(conn, [layer.table for d in catalog.DATASETS.values()
                                           for layer in d.layers])
        scheduled = _refresh(ctx, conn)
        reports = {name: stored_changes.load(conn, load.load_id) for name, load in live.items()}
    return {"datasets": [{**_dataset(ds, live.get(name), latest.get(name), sizes),
                          "elsewhere": [_elsewhere(load) for load in elsewhere
                                        if load.dataset == name],
                          "kept": _kept([k for k in kept if k.dataset == name], kept_bytes),
                          "changes": changes_view.view(reports.get(name), _load_id(live, name))}
                         for name, ds in sorted(catalog.DATASETS.items())],
            "refresh": scheduled}


def _load_id(live: Mapping[str, LiveLoad], dataset: str) -> int | None:
    load = live.get(dataset)
    return load.load_id if load else None


def _refresh(ctx: Context, conn: psycopg.Connection) -> dict[str, Any]:
    """The next scheduled check and the datasets it covers (GEOLOAD_REFRESH_DATASETS)."""
    found: dict[str, Any] = {"cron": ctx.settings.refresh_cron, "next": None, "covers": [],
                             "setting": ",".join(ctx.settings.refresh_datasets), "error": None}
    try:
        chosen = refresh.targets(ctx.settings, conn)
        found["covers"] = [{"dataset": t.label, "why": t.why} for t in chosen]
        if chosen:
            found["next"] = datetime.fromisoformat(refresh.next_check(ctx.settings).isoformat())
    except GeoloadError as exc:
        found["error"] = str(exc)
    return found


def _kept(tables: list[Kept], sizes: dict[str, int]) -> list[dict[str, Any]]:
    """Earlier versions kept under geoload_archive (GEOLOAD_KEEP_VERSIONS), newest first,
    with the space each takes."""
    versions: dict[tuple[str, int], dict[str, Any]] = {}
    for k in tables:
        version = versions.setdefault((k.target_schema, k.load_id), {
            "schema": k.target_schema, "load_id": k.load_id, "release": k.release,
            "archived_at": k.archived_at, "tables": [], "bytes": 0})
        version["tables"].append(f"{archive.ARCHIVE}.{k.archive_table}")
        version["bytes"] += sizes.get(k.archive_table, 0)
    return list(versions.values())


def _elsewhere(load: LiveLoad) -> dict[str, Any]:
    """A version published into a schema of a user's choosing (``--schema``)."""
    options = LoadOptions.from_json(load.options)
    return {"schema": load.target_schema, "run_id": load.run_id, "release": load.release,
            "finished_at": load.finished_at, "options": options.describe() if options else "",
            "tables": sorted(str(layer.get("table")) for layer in (load.layers or {}).values())}


def _dataset(ds: catalog.Dataset, load: LiveLoad | None, latest: LatestLoad | None,
             sizes: dict[str, int | None]) -> dict[str, Any]:
    summary = (load.layers if load else None) or {}
    layers = []
    for layer in ds.layers:
        counts = summary.get(layer.name, {})
        layers.append({
            "layer": layer.name, "table": layer.table, "rows": counts.get("loaded"),
            "source": counts.get("source"), "repaired": counts.get("repaired"),
            "parts_dropped": counts.get("parts_dropped"), "empty": counts.get("empty"),
            "dropped": counts.get("dropped"),
            "table_bytes": sizes.get(layer.table) or counts.get("table_bytes"),
            "preview": (f"/datasets/{quote(ds.name)}/{quote(layer.name)}/preview.svg"
                        if load and sizes.get(layer.table) else None),
        })
    version = None
    if load:
        version = {key: getattr(load, key) for key in (
            "load_id", "run_id", "release", "etag", "last_modified", "bytes", "sha256",
            "fetched_at", "finished_at")}
        options = LoadOptions.from_json(load.options)
        version["options"] = options.describe() if options else ""
        version["source_url"] = mask(load.source_url) if load.source_url else None
    newer = latest if latest and (load is None or latest.load_id != load.load_id) else None
    return {
        "dataset": ds.name, "title": ds.title, "licence": ds.licence, "homepage": ds.homepage,
        "loaded": load is not None, "version": version,
        "layers": layers, "warnings": (load.warnings if load else None) or [],
        "table_bytes": sum(layer["table_bytes"] or 0 for layer in layers),
        "latest_attempt": newer and {key: getattr(newer, key) for key in (
            "run_id", "status", "error", "started_at", "finished_at")},
    }


def failures(ctx: Context, query: Query) -> dict[str, Any]:
    """Failed loads with their chunk, attempts and worker, and the dead-lettered messages."""
    limit = _int_arg(query, "limit", 100, 1, 1000)
    with ctx.db() as conn:
        failed = [asdict(f) for f in history.failures(conn, limit)]
    dead: list[dict[str, Any]] = []
    error = None
    try:
        dead = dead_letters.dead_letters(ctx.settings)
    except ServiceUnavailable as exc:
        error = str(exc)
    for failure in failed:
        _fill_from_dead_letter(failure, dead)
        failure["run_url"] = f"/runs/{failure['run_id']}"
    return {"failures": failed, "dead_letters": dead, "dead_letter_queue":
            messaging.queue_names(ctx.settings.queue)["dead"], "error": error}


def _fill_from_dead_letter(failure: dict[str, Any], dead: list[dict[str, Any]]) -> None:
    """Steps other than a chunk keep no attempt count in PostGIS; their dead letter does."""
    if failure.get("attempts") is not None:
        return
    for letter in dead:
        if (letter.get("actor"), letter.get("run_id"), letter.get("dataset")) == (
                failure["error_step"], failure["run_id"], failure["dataset"]):
            failure["attempts"] = letter["attempts"]
            return


def queues_and_workers(ctx: Context, query: Query) -> dict[str, Any]:
    """Message counts from the management API, and every worker's heartbeat."""
    counts, error = None, None
    try:
        counts = messaging.queue_counts(ctx.settings)
    except ServiceUnavailable as exc:
        error = str(exc)
    return {
        "queue": counts or {"queue": ctx.settings.queue},
        "management_ui": messaging.management_ui(ctx.settings),
        "error": error,
        "workers": workers(ctx),
        "worker_metrics_port": WORKER_METRICS_PORT,
    }


def workers(ctx: Context) -> list[dict[str, Any]]:
    """Workers consuming our queue: alive or stale, and what each thread is doing."""
    at = time.time()
    found = []
    for beat in ctx.live.workers():
        if beat.get("queue") != ctx.settings.queue:
            continue
        age = at - float(beat.get("at") or 0)
        host, _, pid = str(beat.get("worker", "")).rpartition(":")
        found.append({
            "worker": beat.get("worker"), "host": host, "pid": pid,
            "alive": age < STALE_AFTER_S, "last_seen_s": round(age, 1),
            "uptime_s": round(at - float(beat.get("started") or at), 1),
            "processed": beat.get("processed", 0), "failed": beat.get("failed", 0),
            "doing": [{**task, "for_s": round(at - float(task.get("since") or at), 1)}
                      for task in beat.get("doing", [])],
            "metrics": f"http://{host}:{WORKER_METRICS_PORT}/metrics" if host else None,
        })
    return sorted(found, key=lambda w: str(w["worker"]))


# --- actions --------------------------------------------------------------------------------

def _start(ctx: Context, names: list[str], retry_of: str | None) -> dict[str, Any]:
    try:
        chosen = catalog.resolve(names)
    except UnknownDataset as exc:
        raise HTTPError(400, str(exc)) from exc
    with ctx.db() as conn, ctx.broker() as broker:
        started = start(ctx.settings, conn, broker, chosen, origin="dashboard",
                        retry_of=retry_of)
    return {"run_id": started.run_id, "datasets": started.datasets, "retry_of": retry_of,
            "url": f"/runs/{started.run_id}"}


def start_run(ctx: Context, fields: Fields) -> dict[str, Any]:
    """Start loading datasets: ``{"datasets": ["timezone"]}`` (or a form field)."""
    raw = fields.get("datasets")
    names = raw if isinstance(raw, list) else [n for n in str(raw or "").replace(",", " ")
                                               .split() if n]
    if not names or not all(isinstance(n, str) for n in names):
        raise HTTPError(400, "name the datasets to load",
                        hint=f'send {{"datasets": ["{catalog.names()[0]}"]}}; known: '
                             f"{', '.join(catalog.names())}")
    return _start(ctx, names, None)


def _retry(ctx: Context, run_id: str, datasets: list[str] | None) -> dict[str, Any]:
    try:
        with ctx.db() as conn, ctx.broker() as broker:
            started = retry(ctx.settings, conn, broker, run_id, datasets=datasets,
                            origin="dashboard")
    except UnknownRun as exc:
        raise HTTPError(404, f"no run {run_id!r}") from exc
    except NothingToRetry as exc:
        raise HTTPError(409, exc.problem, hint=exc.hint) from exc
    return {"run_id": started.run_id, "datasets": started.datasets, "retry_of": run_id,
            "url": f"/runs/{started.run_id}"}


def retry_run(ctx: Context, fields: Fields, run_id: str) -> dict[str, Any]:
    """A new run of the datasets that failed or were cancelled in ``run_id``."""
    return _retry(ctx, run_id, None)


def retry_dataset(ctx: Context, fields: Fields, run_id: str, dataset: str) -> dict[str, Any]:
    """A new run of one dataset that failed or was cancelled in ``run_id``."""
    return _retry(ctx, run_id, [dataset])


def cancel_run(ctx: Context, fields: Fields, run_id: str) -> dict[str, Any]:
    """Cancel ``run_id``: its unfinished loads end now; a finished run is left as it is."""
    try:
        with ctx.db() as conn:
            outcome = cancel(conn, run_id, by="dashboard")
    except UnknownRun as exc:
        raise HTTPError(404, f"no run {run_id!r}") from exc
    return {"run_id": run_id, "cancelled": outcome.cancelled, "ended": outcome.ended,
            "noop": outcome.noop, "dropped": outcome.dropped, "url": f"/runs/{run_id}"}


def _dead_letter_action(ctx: Context, message_id: str, *, requeue: bool) -> dict[str, Any]:
    act = dead_letters.requeue if requeue else dead_letters.discard
    moved = act(ctx.settings, message_id)
    if not moved and message_id != "all":
        raise HTTPError(404, f"no dead letter {message_id!r} in "
                             f"{messaging.queue_names(ctx.settings.queue)['dead']}")
    return {("requeued" if requeue else "discarded"): moved, "url": "/failures"}


def requeue(ctx: Context, fields: Fields, message_id: str) -> dict[str, Any]:
    """Put a dead letter (or ``all``) back on its queue with a fresh retry budget."""
    return _dead_letter_action(ctx, message_id, requeue=True)


def discard(ctx: Context, fields: Fields, message_id: str) -> dict[str, Any]:
    """Drop a dead letter (or ``all``) for good."""
    return _dead_letter_action(ctx, message_id, requeue=False)


def lookup_point(ctx: Context, query: Query) -> dict[str, Any]:
    """The areas at ``?lat=&lon=``: every loaded time zone variant, GADM level by level.

    The same answer as ``geoload lookup LAT LON --json`` and ``geoload.lookup(lon, lat)``.
    A thread's connection is kept between requests (:func:`~service.postgres.reused`): a
    new one per point would cost more than the lookup.
    """
    lat, lon = query.get("lat"), query.get("lon")
    if lat is None or lon is None:
        raise HTTPError(400, "give the point as ?lat=…&lon=… in decimal degrees",
                        hint="e.g. /api/lookup?lat=47.3769&lon=8.5417")
    try:
        point = lookup.check_point(lat, lon)
    except lookup.BadPoint as exc:
        raise HTTPError(400, exc.problem, hint=exc.hint) from exc
    with reused(ctx.settings) as conn:
        return lookup.lookup(conn, *point).to_json()


def preview(ctx: Context, dataset: str, layer: str, *, changes: bool = False) -> bytes:
    """The SVG drawing of a published layer; with ``changes``, its live load's reshaped and
    added areas drawn over it."""
    try:
        spec = catalog.get(dataset).layer(layer)
    except GeoloadError as exc:
        raise HTTPError(404, str(exc)) from exc
    with ctx.db() as conn:
        load = history.published(conn).get(dataset)
        marked = changes_view.highlighted(stored_changes.load(conn, load.load_id),
                                          spec.table) if load and changes else []
        svg = (ctx.previews.get(conn, spec, load.load_id, marked, changes_key(spec))
               if load else None)
    if svg is None:
        raise HTTPError(404, f"{spec.table} is not loaded")
    return svg
