"""``geoload bench``: the real console script finds the checkout (from the current directory
or from where geoload is installed) and runs its benchmark; without one it says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import service
from service.cli import Exit
from service.cli.main import main
from tests.conftest import ROOT, worker_env

#: The console script pip made beside this interpreter.
GEOLOAD = Path(sys.executable).with_name("geoload")


@pytest.fixture()
def installed(tmp_path_factory) -> dict[str, str]:
    """An environment whose ``service`` and ``actors`` are this tree's and nothing else of
    it, as pip's editable install of this tree gives: devtools/ is not importable."""
    site = tmp_path_factory.mktemp("site")
    for package in ("service", "actors"):
        (site / package).symlink_to(ROOT / package, target_is_directory=True)
    return {**os.environ, "PYTHONPATH": str(site)}


def _geoload(*argv: str, cwd: Path, env: dict[str, str],
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GEOLOAD), *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_the_console_script_answers_bench_help(installed, tmp_path, where):
    """Failed before the fix: exit 2, "devtools/ is not installed", from the checkout too."""
    done = _geoload("bench", "--help", cwd=ROOT if where == "checkout" else tmp_path,
                    env=installed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: geoload bench")
    assert "examples:\n  geoload bench" in done.stdout
    assert "--no-peers" in done.stdout and "--runs RUNS" in done.stdout


def test_a_usage_error_is_the_bench_commands_own(installed, tmp_path):
    done = _geoload("bench", "--runs", "many", cwd=tmp_path, env=installed)
    assert done.returncode == 2
    assert "geoload bench: error: argument --runs: invalid int value: 'many'" in done.stderr


def test_without_a_checkout_it_says_where_it_looked(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site-packages" / "service"
    site.mkdir(parents=True)
    monkeypatch.setattr(service, "__file__", str(site / "__init__.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "geoload: the benchmark runs from a geoload checkout" in err
    assert str(tmp_path) in err and str(site) in err


def test_the_console_script_runs_a_tiny_bench(installed, settings, bench_db, tmp_path):
    """The smallest real run (about 12 s here): a child with the checkout's devtools."""
    out = tmp_path / "bench.json"
    started = time.monotonic()
    done = _geoload("bench", "timezone", "--size", "tiny", "--runs", "1", "--workers", "1",
                    "--no-peers", "--no-ogr2ogr", "--database", bench_db,
                    "--data", str(tmp_path / "data"), "--json", str(out), cwd=tmp_path,
                    env=worker_env(settings, PATH=os.environ["PATH"],
                                   PYTHONPATH=installed["PYTHONPATH"]), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ways = {r["way"]: r for r in json.loads(out.read_text())["rows"]}
    assert ways["geoload 1 worker"]["median_s"] > 0
    assert ways["raw binary COPY"]["median_s"] > 0
    assert time.monotonic() - started < 120
