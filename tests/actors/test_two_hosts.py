"""Two worker groups as two hosts would run them: one broker, a download cache each.

Hosts share RabbitMQ, Redis and PostGIS and keep their caches to themselves,
so each host that loads a chunk of a dataset fetches that dataset itself, and
must load exactly the bytes the run pinned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.fetch.cache import cached
from tests.conftest import Workers, purge_queue, run_cli

pytestmark = pytest.mark.e2e


def test_two_hosts_share_one_run_and_each_keeps_its_own_cache(clean_db, db, tmp_path: Path):
    purge_queue(clean_db)
    caches = {host: tmp_path / f"{host}-cache" for host in ("host-a", "host-b")}
    groups = {host: Workers(clean_db, GEOLOAD_CACHE_DIR=str(cache))
              for host, cache in caches.items()}
    try:
        for group in groups.values():
            group.wait_ready()
        pids = {host: set(group.worker_pids()) for host, group in groups.items()}
        done = run_cli("service.enqueue", "gadm", "timezone", "--wait", "--json",
                       settings=clean_db, timeout=600)
    finally:
        for group in groups.values():
            group.stop()

    assert done.returncode == 0, done.stderr[-3000:]
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["status"] == "succeeded"
    rows = db.execute(
        "SELECT d.dataset, c.worker, d.sha256, d.source_url FROM geoload.chunks c "
        "JOIN geoload.loads d USING (load_id) WHERE d.run_id = %s", (final["run_id"],)).fetchall()
    took: dict[str, set[str]] = {host: set() for host in groups}
    for dataset, worker, _, _ in rows:
        pid = int(worker.rsplit(":", 1)[1])
        [host] = [h for h in groups if pid in pids[h]]  # every chunk ran on one of the hosts
        took[host].add(dataset)
    assert all(took.values()), took  # both hosts took work
    pinned = {dataset: (sha256, url) for dataset, _, sha256, url in rows}
    for host, datasets in took.items():
        for dataset in datasets:
            sha256, url = pinned[dataset]
            archive = caches[host] / dataset / url.rsplit("/", 1)[-1]
            have = cached(archive)
            assert have is not None and have.sha256 == sha256, (host, dataset)
