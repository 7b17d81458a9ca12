"""``--profile``: CPU seconds per stage, charged by where the code is and what it calls."""

import threading
import time

import pytest

from devtools.bench.backends import kind
from devtools.bench.profile import stages
from devtools.bench.profile.sampler import thread_cpu


@pytest.mark.parametrize(("line", "path", "expected"), [
    ("    invalid = ~missing & ~is_valid(geoms)", "/x/service/repair/__init__.py", "validate"),
    ("    geoms = shapely.from_wkb(wkb)", "/x/service/repair/__init__.py", "decode WKB"),
    ("        geoms[invalid] = shapely.make_valid(geoms[invalid])",
     "/x/service/repair/__init__.py", "repair"),
    ("    x = 1", "/x/service/repair/__init__.py", "repair"),
    ("    x = 1", "/x/service/fetch/unzip/follow.py", "inflate"),
    ("    digest.update(block)", "/x/service/fetch/http.py", "hash"),
    ("    x = 1", "/x/service/load/copy.py", "encode + COPY send"),
    ("    x = 1", "/x/elsewhere/mine.py", None),
])
def test_a_line_is_charged_to_the_stage_it_calls(monkeypatch, line, path, expected):
    monkeypatch.setattr(stages.linecache, "getline", lambda filename, lineno: line)
    assert stages._label(path, 1) == expected


@pytest.mark.parametrize(("query", "state", "expected"), [
    ('COPY "staging"."gadm__adm_3__l4" (gid_3, geom) FROM STDIN (FORMAT binary)', "active",
     "COPY (server)"),
    ('CREATE INDEX "i" ON "staging"."t" USING gist ("geom")', "active", "GiST index"),
    ('ALTER TABLE "staging"."t" ADD CONSTRAINT "p" PRIMARY KEY ("gid_3")', "active",
     "primary key"),
    ('CREATE INDEX "i" ON "staging"."t" ("gid_0")', "active", "B-tree indexes"),
    ('ANALYZE "staging"."t"', "active", "ANALYZE"),
    ('ANALYZE "staging"."t"', "idle in transaction", "idle in transaction / between statements"),
])
def test_a_statement_is_charged_to_its_kind(query, state, expected):
    assert kind(query, state) == expected


def test_a_threads_cpu_is_read_from_proc():
    done = {}

    def burn():
        deadline = time.thread_time() + 0.3
        while time.thread_time() < deadline:
            pass
        done["cpu"] = thread_cpu(threading.get_native_id())

    thread = threading.Thread(target=burn)
    thread.start()
    thread.join()
    assert 0.25 <= done["cpu"] <= 0.5
