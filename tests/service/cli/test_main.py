"""``geoload``: every subcommand answers --help with examples, ``load`` takes what
``service.enqueue`` takes, and the role subcommands are the Procfile's commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from service.cli import enqueue, launch
from service.cli.main import COMMANDS, main
from service.settings import from_env
from tests.conftest import ROOT
from tests.support.procfile import procfile


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_with_examples(capsys):
    out = _help(capsys)
    for name in ("load", "status", "datasets", "cancel", "retry", "worker", "scheduler",
                 "dashboard", "bench", "settings", "lookup"):
        assert re.search(rf"^\s+{name}\b", out, re.M), name
    assert "geoload load gadm timezone --local" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help_with_examples(capsys, name):
    out = _help(capsys, name)
    assert out.startswith(f"usage: geoload {name}")
    assert "examples:\n  geoload " + name in out


def test_load_accepts_every_option_enqueue_accepts(capsys):
    out = _help(capsys, "load")
    options = {o for action in enqueue.build_parser()._actions for o in action.option_strings}
    assert options and all(o in out for o in options), options
    assert "--local" in out and "--workers N" in out


def test_workers_without_local_is_a_usage_error(capsys):
    from service.cli import Exit

    with pytest.raises(Exit) as exit_:
        main(["load", "timezone", "--workers", "2"])
    assert exit_.value.code == 2
    assert "--workers goes with --local" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error_naming_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lod"])
    assert exit_.value.code == 2
    assert "invalid choice: 'lod'" in capsys.readouterr().err


def _procfile_argv(role: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The Procfile's command for ``role`` with ${X:-default} filled from ``env``."""
    def fill(m: re.Match[str]) -> str:
        return env.get(m[1]) or m[2]
    words = re.sub(r"\$\{(\w+):-([^}]*)\}", fill, procfile()[role]).split()
    assigned = dict(w.split("=", 1) for w in words if re.match(r"^\w+=", w))
    return [w for w in words if not re.match(r"^\w+=", w)], assigned


@pytest.mark.parametrize("role", launch.ROLES)
@pytest.mark.parametrize("env", [{}, {"GEOLOAD_WORKER_PROCESSES": "3",
                                      "GEOLOAD_WORKER_THREADS": "5"}])
def test_role_commands_are_the_procfiles(role, env):
    found = launch.command(role, from_env(env))
    assert (found.argv, found.env) == _procfile_argv(role, env)


def test_role_options_override_the_settings():
    found = launch.command("worker", from_env({}), processes=4, threads=3)
    assert found.argv[-4:] == ["--processes", "4", "--threads", "3"]
    assert found.env == {"dramatiq_queue_prefetch": "3"}


def test_python_m_service_cli_is_the_geoload_command():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOAD_")}
    out = subprocess.run([sys.executable, "-m", "service.cli", "worker", "--dry-run",
                          "--threads", "3"], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["dramatiq_queue_prefetch=3", "dramatiq", "actors",
                                  "--processes", "2", "--threads", "3"]


def test_the_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'geoload = "service.cli.main:entry"' in text


def test_python_m_service_enqueue_keeps_its_own_face():
    parser = enqueue.build_parser()
    assert parser.prog == "python -m service.enqueue"
    args = parser.parse_args(["gadm", "timezone", "--wait", "--strict"])
    assert (args.datasets, args.wait, args.strict) == (["gadm", "timezone"], True, True)
    out = subprocess.run([sys.executable, "-m", "service.enqueue", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m service.enqueue")
