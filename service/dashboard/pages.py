"""The HTML of each page, rendered from exactly the data its JSON API serves."""

from __future__ import annotations

from typing import Any

from service.dashboard.markup import (
    badge,
    bar,
    button,
    duration,
    esc,
    main,
    number,
    percent,
    rate,
    size,
    table,
    when,
)

#: How often a page that changes polls for a fresh copy of itself.
LIVE_MS = 2000


def _link(href: str, text: Any) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def _load_buttons(names: list[str], csrf: str) -> str:
    return "".join(button("/api/runs", f"Load {name}", csrf, name="datasets", value=name,
                          test_id=f"load-{name}") for name in names)


def runs(data: dict[str, Any], csrf: str) -> str:
    rows = []
    for run in data["runs"]:
        names = " ".join(f'{esc(d["dataset"])} {badge(d["status"])}' for d in run["datasets"])
        origin = esc(run["origin"])
        if run["retry_of"]:
            origin += f' · retry of {_link("/runs/" + run["retry_of"], run["retry_of"])}'
        rows.append([_link(run["url"], run["run_id"]), badge(run["status"]),
                     when(run["created_at"]), duration(run["duration_s"]), names,
                     bar(run["percent"], f'{number(run["loaded"])} / {number(run["total"])}',
                         key=run["run_id"]), origin])
    body = (f'<h1>Runs</h1><div class="actions">{_load_buttons(data["datasets"], csrf)}</div>'
            + table(["Run", "Status", "Started", "Duration", "Datasets", "Features", "Origin"],
                    rows, empty="No runs yet: start one with a Load button above.",
                    cls="runs"))
    return main(body, live_ms=LIVE_MS)


def run(data: dict[str, Any], csrf: str) -> str:
    failed = [d for d in data["datasets"] if d["status"] == "failed"]
    head = (f'<h1>Run {esc(data["run_id"])} {badge(data["status"])}</h1>'
            f'<p class="meta">started {when(data["created_at"])} · '
            f'{"took" if data["finished"] else "running for"} {duration(data["duration_s"])} · '
            f'origin {esc(data["origin"])}'
            + (f' · retry of {_link("/runs/" + data["retry_of"], data["retry_of"])}'
               if data["retry_of"] else "")
            + "".join(f' · retried by {_link("/runs/" + r, r)}' for r in data["retried_by"])
            + "</p>")
    if failed:
        head += ('<div class="actions">' + button(f'/api/runs/{data["run_id"]}/retry',
                                                  "Retry failed datasets", csrf,
                                                  test_id="retry-run") + "</div>")
    cards = "".join(_dataset_progress(data["run_id"], d, csrf) for d in data["datasets"])
    return main(head + cards, live_ms=None if data["finished"] else LIVE_MS)


def _dataset_progress(run_id: str, d: dict[str, Any], csrf: str) -> str:
    label = f'{number(d["loaded"])} / {number(d["total"])} features · {percent(d["percent"])}'
    out = [f'<section class="card" data-dataset="{esc(d["dataset"])}">'
           f'<h2>{esc(d["dataset"])} {badge(d["status"])}</h2>',
           bar(d["percent"], label, key=d["dataset"]),
           f'<p class="meta">{rate(d["features_per_s"])} · ETA {duration(d["eta_s"])}'
           f' · release {esc(d["release"] or "—")} · source {esc(d["source_url"] or "—")}'
           f' ({size(d["bytes"])})</p>']
    download = d.get("download")
    if download and d["status"] in ("queued", "fetching"):
        out.append(bar(download.get("percent"), f'download {size(download.get("bytes"))} of '
                                                 f'{size(download.get("total"))}',
                       key=d["dataset"] + ":download"))
    out.append(_warnings(d["warnings"]))
    if d["error"]:
        out.append(f'<div class="error"><strong>Failed at {esc(d["error_step"])}:</strong> '
                   f'<pre>{esc(d["error"])}</pre>'
                   + button(f'/api/runs/{run_id}/datasets/{d["dataset"]}/retry',
                            f'Retry {d["dataset"]}', csrf, test_id=f'retry-{d["dataset"]}')
                   + "</div>")
    rows = [[esc(layer["layer"]), esc(layer["table"]), badge(layer["status"]),
             bar(layer["percent"], f'{number(layer["loaded"])} / {number(layer["source"])}',
                 key=f'{d["dataset"]}:{layer["layer"]}'),
             f'{layer["chunks_done"]} / {layer["chunks_total"]}', rate(layer["features_per_s"]),
             duration(layer["eta_s"]), number(layer["repaired"]), number(layer["dropped"]),
             number(layer["attempts"]), number(layer["failed_chunks"])] for layer in d["layers"]]
    out.append(table(["Layer", "Table", "Status", "Features", "Chunks", "Throughput", "ETA",
                      "Repaired", "Dropped", "Attempts", "Failed chunks"], rows,
                     empty="Layers appear once the source is fetched and planned."))
    return "".join(out) + "</section>"


def _warnings(warnings: list[dict[str, Any]]) -> str:
    """A load's data warnings (schema drift, features kept without geometry), one per line."""
    if not warnings:
        return ""
    items = "".join(f'<li data-kind="{esc(w["kind"])}"><strong>{esc(w["layer"])}</strong>: '
                    f'{esc(w["message"])}</li>' for w in warnings)
    return (f'<div class="warnings"><strong>{len(warnings)} warning(s):</strong>'
            f"<ul>{items}</ul></div>")


def datasets(data: dict[str, Any], csrf: str) -> str:
    cards = "".join(_dataset_card(d, csrf) for d in data["datasets"])
    return main("<h1>Datasets</h1>" + cards, live_ms=None)


def _dataset_card(d: dict[str, Any], csrf: str) -> str:
    out = [f'<section class="card" data-dataset="{esc(d["dataset"])}">'
           f'<h2>{esc(d["dataset"])} <small>{esc(d["title"])}</small></h2>',
           f'<p class="meta">{esc(d["licence"])} · {_link(d["homepage"], d["homepage"])}</p>']
    v = d["version"]
    if v:
        out.append(
            '<dl class="version">'
            f'<dt>Release</dt><dd>{esc(v["release"] or "—")}</dd>'
            f'<dt>ETag</dt><dd><code>{esc(v["etag"] or "—")}</code></dd>'
            f'<dt>Last-Modified</dt><dd>{esc(v["last_modified"] or "—")}</dd>'
            f'<dt>Fetched</dt><dd>{when(v["fetched_at"])}</dd>'
            f'<dt>Loaded</dt><dd>{when(v["finished_at"])} by run '
            f'{_link("/runs/" + v["run_id"], v["run_id"])}</dd>'
            f'<dt>Source</dt><dd>{esc(v["source_url"])} ({size(v["bytes"])})</dd>'
            f'<dt>SHA-256</dt><dd><code>{esc(v["sha256"])}</code></dd>'
            f'<dt>Tables</dt><dd>{size(d["table_bytes"])}</dd></dl>')
    else:
        out.append('<p class="empty">Not loaded yet.</p>')
    late = d["latest_attempt"]
    if late:
        out.append(f'<p class="note">Latest attempt: run '
                   f'{_link("/runs/" + late["run_id"], late["run_id"])} {badge(late["status"])}'
                   + (f' <span class="error-text">{esc(late["error"])}</span>'
                      if late["error"] else "") + "</p>")
    out.append('<div class="actions">' + _load_buttons([d["dataset"]], csrf) + "</div>")
    if v:
        out.append(_warnings(d["warnings"]))
        rows = [[esc(x["layer"]), esc(x["table"]), number(x["rows"]), number(x["source"]),
                 number(x["repaired"]), number(x["parts_dropped"]), number(x["empty"]),
                 number(x["dropped"]), size(x["table_bytes"])] for x in d["layers"]]
        out.append(table(["Layer", "Table", "Rows", "Source features", "Repaired",
                          "Parts dropped", "Empty", "Dropped", "Size"], rows, empty=""))
        out.append('<div class="previews">' + "".join(
            f'<figure><img src="{esc(x["preview"])}" alt="map of {esc(x["table"])}" '
            f'loading="lazy"><figcaption>{esc(x["table"])}</figcaption></figure>'
            for x in d["layers"] if x["preview"]) + "</div>")
    return "".join(out) + "</section>"


def failures(data: dict[str, Any], csrf: str) -> str:
    rows = []
    for f in data["failures"]:
        where = (f'{esc(f["layer"])} #{esc(f["chunk_no"])}' if f["layer"] is not None else "—")
        action = (f'retried by {_link("/runs/" + f["retried_by"], f["retried_by"])}'
                  if f["retried_by"] else
                  button(f'/api/runs/{f["run_id"]}/datasets/{f["dataset"]}/retry',
                         f'Retry {f["dataset"]}', csrf)
                  + button(f'/api/runs/{f["run_id"]}/retry', "Retry run", csrf))
        rows.append([when(f["failed_at"]), _link(f["run_url"], f["run_id"]), esc(f["dataset"]),
                     esc(f["error_step"]), where, number(f["attempts"]),
                     esc(f["worker"] or "—"),
                     f'<pre>{esc(f["error_type"])}: {esc(f["error"])}</pre>', action])
    out = ["<h1>Failures</h1>",
           table(["When", "Run", "Dataset", "Step", "Layer / chunk", "Attempts", "Worker",
                  "Error", ""], rows, empty="No failed loads.", cls="failures"),
           f'<h2>Dead letters <small>{esc(data["dead_letter_queue"])}</small></h2>']
    if data["error"]:
        out.append(f'<p class="error">{esc(data["error"])}</p>')
    dead = data["dead_letters"]
    if dead:
        out.append('<div class="actions">'
                   + button("/api/dead-letters/all/requeue", "Requeue all", csrf)
                   + button("/api/dead-letters/all/discard", "Discard all", csrf, danger=True,
                            confirm="Discard every dead letter for good?") + "</div>")
    rows = [[f'<code>{esc(m["message_id"])}</code>', esc(m["actor"]),
             _link("/runs/" + str(m.get("run_id")), m.get("run_id")) if m.get("run_id") else "—",
             esc(m.get("dataset", "—")),
             esc(f'{m["layer"]} #{m.get("chunk_no")}' if m.get("layer") else "—"),
             number(m["attempts"]), f'<pre>{esc(m["error"] or "—")}</pre>',
             button(f'/api/dead-letters/{m["message_id"]}/requeue', "Requeue", csrf)
             + button(f'/api/dead-letters/{m["message_id"]}/discard', "Discard", csrf,
                      danger=True, confirm="Discard this message for good?")]
            for m in dead]
    out.append(table(["Message", "Actor", "Run", "Dataset", "Layer / chunk", "Attempts",
                      "Error", ""], rows, empty="No dead-lettered messages."))
    return main("".join(out), live_ms=LIVE_MS * 3)


def queues(data: dict[str, Any], csrf: str) -> str:
    q = data["queue"]
    out = ["<h1>Queues</h1>"]
    if data["error"]:
        out.append(f'<p class="error">{esc(data["error"])}</p>')
    out.append(table(["Queue", "Ready", "Unacked", "Delayed", "Dead", "Consumers"],
                     [[esc(q["queue"]), number(q.get("ready")), number(q.get("unacked")),
                       number(q.get("delayed")), number(q.get("dead")),
                       number(q.get("consumers"))]], empty="", cls="queues"))
    out.append(f'<p class="meta">RabbitMQ refreshes these counts every 5 s · '
               f'{_link(data["management_ui"], "open the RabbitMQ management UI")}</p>')
    rows = []
    for w in data["workers"]:
        doing = "<br>".join(
            esc(f'{t.get("actor")} {t.get("dataset", "")} {t.get("layer") or ""}'
                f'{" #" + str(t["chunk_no"]) if t.get("chunk_no") is not None else ""}'
                f' · {duration(t.get("for_s"))}') for t in w["doing"]) or "idle"
        rows.append([esc(w["worker"]), badge("alive" if w["alive"] else "stale"),
                     f'{w["last_seen_s"]:.0f} s ago', duration(w["uptime_s"]),
                     number(w["processed"]), number(w["failed"]), doing,
                     _link(w["metrics"], "metrics") if w["metrics"] else "—"])
    out.append("<h1>Workers</h1>")
    out.append(table(["Worker", "Heartbeat", "Last seen", "Up", "Processed", "Failed", "Doing",
                      "Dramatiq metrics"], rows, empty="No worker is running.", cls="workers"))
    out.append(f'<p class="meta">Workers export Dramatiq\'s Prometheus metrics on port '
               f'{data["worker_metrics_port"]} of their host (GEOLOAD_WORKER_METRICS=1).</p>')
    return main("".join(out), live_ms=LIVE_MS)


def error(status: int, message: str, hint: str | None) -> str:
    return main(f'<h1>{status}</h1><p class="error">{esc(message)}</p>'
                + (f"<p>{esc(hint)}</p>" if hint else ""), live_ms=None)
