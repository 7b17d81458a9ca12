"""Progress, throughput and ETA, worked out from the ledger's timestamps.

A layer's pace is its loaded features over the time since its first chunk
started (up to now while it loads, up to its last chunk once done), so a page
opened mid-run shows the same numbers as one that watched from the start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.ledger.history import LayerTiming
from service.ledger.records import TERMINAL
from service.ledger.status import RunStatus


def now() -> datetime:
    return datetime.now(UTC)


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def pace(loaded: int, total: int, start: datetime | None, end: datetime | None,
         *, done: bool, ended: bool = False) -> dict[str, Any]:
    """Percent, features per second and seconds left (None where unknown or never)."""
    elapsed = seconds(start, end)
    rate = loaded / elapsed if elapsed and loaded else None
    left = max(total - loaded, 0)
    eta = None if ended and not done else (
        0.0 if done or (total and not left) else (round(left / rate, 1) if rate else None))
    return {
        "percent": round(100.0 * loaded / total, 1) if total else (100.0 if done else 0.0),
        "features_per_s": round(rate, 1) if rate else None,
        "eta_s": eta,
    }


def run_summary(run: RunStatus, at: datetime) -> dict[str, Any]:
    """One line of the runs list."""
    loaded = sum(d.loaded for d in run.datasets)
    total = sum(d.total for d in run.datasets)
    return {
        "run_id": run.run_id, "status": run.status, "origin": run.origin,
        "retry_of": run.retry_of, "created_at": run.created_at,
        "finished_at": run.finished_at,
        "duration_s": seconds(run.created_at, run.finished_at or at),
        "datasets": [{"dataset": d.dataset, "status": d.status} for d in run.datasets],
        "loaded": loaded, "total": total,
        "percent": round(100.0 * loaded / total, 1) if total else
        (100.0 if run.status == "succeeded" else 0.0),
        "url": f"/runs/{run.run_id}",
    }


def run_detail(run: RunStatus, timings: dict[tuple[str, str], LayerTiming],
               at: datetime) -> dict[str, Any]:
    """The run as :meth:`RunStatus.as_json`, plus pace per dataset and per layer."""
    data = run.as_json()
    data["duration_s"] = seconds(run.created_at, run.finished_at or at)
    for dataset, raw in zip(run.datasets, data["datasets"]):
        ended = dataset.status in TERMINAL
        starts, ends = [], []
        for layer, raw_layer in zip(dataset.layers, raw["layers"]):
            timing = timings.get((dataset.dataset, layer.layer))
            first = timing.first_started if timing else None
            done = layer.loaded >= layer.source
            end = (timing.last_finished if timing else None) if done or ended else at
            raw_layer.update(pace(layer.loaded, layer.source, first, end,
                                  done=done, ended=ended),
                             attempts=int(timing.attempts or 0) if timing else 0,
                             failed_chunks=int(timing.failed or 0) if timing else 0)
            starts += [first] if first else []
            ends += [end] if end else []
        end = (max(ends) if ends else None) if ended else at
        raw.update(pace(dataset.loaded, dataset.total, min(starts) if starts else None, end,
                        done=dataset.status == "published", ended=ended))
        raw["download"] = _download(raw.get("download"))
    return data


def _download(progress: dict[str, Any] | None) -> dict[str, Any] | None:
    if not progress:
        return None
    total = progress.get("total")
    done = int(progress.get("bytes") or 0)
    return {**progress, "percent": round(100.0 * done / total, 1) if total else None}
