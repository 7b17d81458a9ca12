"""``python -m devtools.bench --profile``: where a load's CPU goes, per stage.

One extra load per dataset with the benchmark's worker processes, outside the timed
rounds (sampling costs a little CPU): the workers sample themselves
(:mod:`~devtools.bench.profile.sampler`, started by a ``sitecustomize`` on their
PYTHONPATH) and PostgreSQL's backends are sampled from here
(:mod:`~devtools.bench.backends`). Printed: CPU seconds per stage on each side.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from devtools.bench import runner
from devtools.bench.backends import ServerSampler
from devtools.bench.profile.sampler import FLUSH_S
from devtools.workers import ROOT
from service.settings import Settings

SITE = Path(__file__).parent / "site"


def worker_totals(folder: Path) -> dict[str, float]:
    """CPU seconds per stage, summed over the workers' files in ``folder``."""
    totals: dict[str, float] = defaultdict(float)
    for path in folder.glob("worker-*.json"):
        try:
            for name, seconds in json.loads(path.read_text()).items():
                totals[name] += seconds
        except (OSError, ValueError):
            continue
    return totals


class _Window:
    """The timed part: the server sampler runs, and the workers' totals so far (startup,
    imports) are set aside. The workers write their totals every FLUSH_S, and may be
    stopped without a last write, so the window waits for one on both sides."""

    def __init__(self, folder: Path, server: ServerSampler) -> None:
        self.folder, self.server = folder, server
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}

    def __enter__(self) -> "_Window":
        time.sleep(FLUSH_S * 1.5)  # every worker has written its startup totals
        self.before = worker_totals(self.folder)
        self.server.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.__exit__(kind, exc, tb)
        time.sleep(FLUSH_S * 1.5)
        self.after = worker_totals(self.folder)


def profile_once(settings: Settings, dataset: str, processes: int, threads: int,
                 work: Path) -> dict[str, Any]:
    """One profiled load of ``dataset``: its time, and CPU seconds per stage."""
    folder = work / f"profile-{dataset}-{time.time_ns()}"
    folder.mkdir()
    database = urlsplit(settings.database_url).path.lstrip("/")
    window = _Window(folder, ServerSampler(settings.database_url, database))
    env = {"GEOLOAD_BENCH_PROFILE": str(folder), "PYTHONPATH": f"{SITE}:{ROOT}"}
    timed = runner.geoload_once(settings, dataset, processes, threads, work, env=env,
                                around=window)
    workers = {k: v - window.before.get(k, 0.0) for k, v in window.after.items()}
    return {"dataset": dataset, "processes": processes, "threads": threads,
            "seconds": round(timed.seconds, 2),
            "machine_cpu_s": round(timed.cpu, 2) if timed.cpu is not None else None,
            "workers_cpu_s": _sorted(workers), "server_cpu_s": _sorted(window.server.totals)}


def _sorted(totals: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
            if round(v, 2) > 0}


def render(profile: dict[str, Any]) -> str:
    lines = [f"{profile['dataset']}: profiled load with {profile['processes']} worker processes "
             f"x {profile['threads']} threads, {profile['seconds']:.2f} s, machine busy CPU "
             f"{profile['machine_cpu_s']} s"]
    for side, title in (("workers_cpu_s", "workers"), ("server_cpu_s", "PostgreSQL backends")):
        totals = profile[side]
        lines.append(f"  {title}: {sum(totals.values()):.2f} CPU s")
        lines += [f"    {name:<44} {seconds:7.2f}" for name, seconds in totals.items()]
    return "\n".join(lines)
