"""One module's stack for fault tests: a loopback mirror, real workers and the real CLI.

A :class:`Mirror` serves the good tiny files at upstream's paths and swaps in a
crafted bad one for a test. A :class:`Stack` runs ``python -m service.enqueue
… --wait`` against worker processes and reads back what the run left behind:
the ``geoload.loads`` row, the dead-letter queue, the live tables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from devtools.testdata.mirror import GADM_URL, mirror_path, timezone_url
from devtools.testdata.server import DataServer, Request, serve
from devtools.workers import WorkerGroup
from service import settings as config
from service.ledger import runs
from service.pipeline.broker import make_broker, send
from service.pipeline.messages import Next
from service.settings import Settings, to_env
from tests.conftest import ROOT, purge_queue, reset_database
from tests.support.craft import GoodFiles, good_files

#: Every table the two datasets publish, with the key that orders a digest of its rows.
LIVE_TABLES = {**{f"gadm.adm_{i}": "fid" for i in range(6)}, "timezone.timezones": "tzid"}


class Mirror:
    """Upstream on loopback: good files at upstream's paths, one swapped for a bad one at will.

    Request times are recorded beside the server's own log, so a test can see retries
    spaced by backoff.
    """

    def __init__(self, server: DataServer, root: Path, good: GoodFiles, release: str) -> None:
        self.server = server
        self.root = root
        self.good = good
        self.paths = {"gadm": "/" + mirror_path(GADM_URL),
                      "timezone": "/" + mirror_path(timezone_url(release))}
        self.times: list[tuple[float, Request]] = []
        record = server.record

        def timed(entry: Request) -> None:
            self.times.append((time.monotonic(), entry))
            record(entry)

        server.record = timed  # type: ignore[method-assign]
        self.restore()

    @property
    def url(self) -> str:
        return self.server.url

    def target(self, dataset: str) -> Path:
        return self.root / self.paths[dataset].lstrip("/")

    def put(self, dataset: str, crafted: Path) -> None:
        """Serve ``crafted`` in place of the dataset's file (a new inode, so a new ETag)."""
        target = self.target(dataset)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(target.name + ".next")
        shutil.copyfile(crafted, staged)
        os.replace(staged, target)

    def restore(self) -> None:
        """The good files back in place, no faults armed, an empty request log."""
        self.put("gadm", self.good.gadm_zip)
        self.put("timezone", self.good.timezone_zip)
        self.server.clear_faults()
        self.forget()

    def forget(self) -> None:
        self.server.clear_log()
        self.times.clear()

    def fault(self, dataset: str, kind: str, **params: Any) -> None:
        self.server.fault(self.paths[dataset], kind, **params)

    def gets(self, dataset: str) -> list[tuple[float, Request]]:
        """GET requests for the dataset's file, with the time each was answered."""
        path = self.paths[dataset]
        return [(at, r) for at, r in self.times if r.method == "GET" and r.path == path]


@dataclass
class Run:
    """What ``enqueue --wait`` did: exit code, output, and the run's load rows."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    run_id: str | None
    loads: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def load(self, dataset: str) -> dict[str, Any]:
        return self.loads[dataset]


@dataclass
class Stack:
    """Settings, mirror and workers of one test module; ``inspect_url`` reads as an admin."""

    settings: Settings
    mirror: Mirror
    workers: WorkerGroup
    inspect_url: str
    #: Everything geoload printed in this module beside the workers' log (CLI output, the
    #: logs of short-lived worker groups), for the secrets check.
    transcript: list[str] = field(default_factory=list)

    def cli(self, module: str, *args: str, timeout: float = 120,
            **env: str) -> subprocess.CompletedProcess[str]:
        """``python -m module args`` with this stack's settings, as a user runs it."""
        environment = {**to_env(self.settings), "PYTHONPATH": str(ROOT), **env}
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=environment,
                              capture_output=True, text=True, timeout=timeout)
        self.transcript.append(done.stdout + done.stderr)
        return done

    def enqueue(self, *datasets: str, timeout: float = 90, strict: bool = False) -> Run:
        """``enqueue DATASETS --wait --json [--strict]`` until the run ends."""
        started = time.monotonic()
        done = self.cli("service.enqueue", *datasets, "--wait", "--json",
                        "--timeout", str(timeout), *(["--strict"] if strict else []),
                        timeout=timeout + 30)
        seconds = time.monotonic() - started
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        run_id = lines[0]["run_id"] if lines else None
        run = Run(done.returncode, done.stdout, done.stderr, seconds, run_id)
        if run_id:
            run.loads = self.loads(run_id)
        return run

    def query(self, query: str | sql.Composed, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.inspect_url, autocommit=True) as conn, \
                conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params or None).fetchall()

    def loads(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT * FROM geoload.loads WHERE run_id = %s", run_id)
        return {row["dataset"]: row for row in rows}

    def chunks(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT c.* FROM geoload.chunks c JOIN geoload.loads USING (load_id) "
                          "WHERE run_id = %s ORDER BY layer, chunk_no", run_id)

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Row count and a digest of every row (geometry included) of each live table."""
        out = {}
        for table, key in LIVE_TABLES.items():
            name = sql.Identifier(*table.split("."))
            query = sql.SQL("SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' "
                            "ORDER BY {}), '')) AS digest FROM {} t").format(
                sql.Identifier(key), name)
            row = self.query(query)[0]
            out[table] = (row["n"], row["digest"])
        return out

    def staging_tables(self) -> list[str]:
        rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'geoload_staging'")
        return [r["tablename"] for r in rows]

    def assert_unchanged(self, before: dict[str, tuple[int, str]], wait: float = 20) -> None:
        """The live tables hold exactly what they held, and no staging table is left."""
        deadline = time.monotonic() + wait
        while self.staging_tables() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.staging_tables() == []
        assert self.snapshot() == before

    def send(self, *steps: Next) -> None:
        """Publish messages to the workers' queue, as geoload's producer does."""
        broker = make_broker(self.settings)
        try:
            send(broker, self.settings, steps)
        finally:
            broker.close()

    def send_raw(self, *bodies: bytes) -> None:
        """Publish bodies that no geoload producer would write."""
        with pika.BlockingConnection(pika.URLParameters(self.settings.broker_url)) as connection:
            channel = connection.channel()
            for body in bodies:
                channel.basic_publish("", self.settings.queue, body)

    def new_run(self, *datasets: str) -> str:
        """A run recorded as the CLI records one, for tests that send its messages by hand."""
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            return runs.create(conn, list(datasets), {d: None for d in datasets})

    def dead_letters(self) -> list[dict[str, Any]]:
        """Take every message out of the dead-letter queue, decoded."""
        params = pika.URLParameters(self.settings.broker_url)
        found: list[dict[str, Any]] = []
        with pika.BlockingConnection(params) as connection:
            channel = connection.channel()
            while True:
                method, _props, body = channel.basic_get(self.settings.queue + ".XQ",
                                                         auto_ack=True)
                if method is None:
                    return found
                try:
                    found.append(json.loads(body))
                except ValueError:
                    found.append({"raw": body})

    def dead_letter_count(self) -> int:
        params = pika.URLParameters(self.settings.broker_url)
        with pika.BlockingConnection(params) as connection:
            declared = connection.channel().queue_declare(self.settings.queue + ".XQ",
                                                          passive=True)
            return int(declared.method.message_count)


def assert_refused(run: Run, dataset: str, step: str, problem: str, *,
                   file: str, error_type: str = "BadSource") -> dict:
    """Exit 1, and a failed load whose error names dataset, file, problem and what to do."""
    assert run.code == 1, run.output[-3000:]
    load = run.load(dataset)
    assert (load["status"], load["error_step"], load["error_type"]) == (
        "failed", step, error_type), load["error"]
    error = load["error"]
    assert error.startswith(f"[{dataset}] ") and file in error, error
    assert re.search(problem, error), error
    assert "What to do: " in error, error
    assert f"geoload: {dataset} failed at {step}: {error}" in run.stderr
    return load


def dead_letter(stack: Stack, run: Run, actor: str) -> dict:
    """The run's one dead message: the step that failed, with how often it was retried."""
    dead = [m for m in stack.dead_letters() if list(m.get("args", []))[:1] == [run.run_id]]
    assert [m["actor_name"] for m in dead] == [actor]
    return dead[0]


def retries(message: dict) -> int:
    return int(message["options"].get("retries", 0))


def wait_for(condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def module_settings(base: Settings, **env: str) -> Settings:
    """``base`` with some variables changed, read back as the workers will read them."""
    return config.from_env({**to_env(base), **env})


@contextmanager
def running_stack(base: Settings, folder: Path, *, inspect_url: str | None = None,
                  mirror_login: str = "", prepare: Callable[[str], None] = reset_database,
                  processes: int = 1, threads: int = 2, **env: str) -> Iterator[Stack]:
    """A database set up by ``prepare``, a mirror of good files, workers configured by ``env``.

    ``mirror_login`` (``user:password``) goes into GEOLOAD_MIRROR's URL.
    """
    release = base.timezone_release
    good = good_files(folder, release)
    with serve(folder / "served") as server:
        mirror = Mirror(server, folder / "served", good, release)
        login = f"{mirror_login}@" if mirror_login else ""
        settings = module_settings(base, GEOLOAD_MIRROR=f"http://{login}{server.host}:"
                                   f"{server.port}", GEOLOAD_CACHE_DIR=str(folder / "cache"),
                                   **env)
        prepare(inspect_url or base.database_url)
        purge_queue(settings)
        workers = WorkerGroup(settings, processes=processes, threads=threads,
                              log=folder / "workers.log")
        try:
            workers.wait_ready()
            yield Stack(settings, mirror, workers, inspect_url or settings.database_url)
        finally:
            workers.stop()
            purge_queue(settings)
