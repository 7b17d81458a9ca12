"""The deployment contract, checked without a Docker engine.

compose.yml, docker/Dockerfile, docker/entrypoint.sh, the Procfile and
.env.example are parsed and held to what the README promises: the services and
their healthchecks, restarts, volumes, pinned images, the same commands under
compose and honcho, and every variable documented.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from service.settings import setting_names
from tests.conftest import ROOT, worker_env
from tests.support.procfile import procfile

COMPOSE = ROOT / "compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
ENV_EXAMPLE = ROOT / ".env.example"

SERVICES = {"postgis", "rabbitmq", "redis", "worker", "scheduler", "dashboard"}
ROLES = ("worker", "scheduler", "dashboard")
INFRA = ("postgis", "rabbitmq", "redis")
#: Variables that are not geoload's, each allowed for a reason.
THIRD_PARTY = {
    "POSTGRES_": "the postgis image creates its database and superuser from them",
    "RABBITMQ_": "the rabbitmq image creates its first user from them",
    "dramatiq_": "Dramatiq's own settings (lower case), such as dramatiq_queue_prefetch",
}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def env_example(*, only_set: bool = False) -> dict[str, str]:
    """Variables .env.example names (a commented-out one as ''), or only those it sets."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#?)\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match and not (only_set and match[1]):
            found.setdefault(match[2], "" if match[1] else match[3])
    return found


def interpolated(text: str) -> list[tuple[str, str, str]]:
    """(name, operator, default-or-message) of each ``${...}`` in ``text``."""
    return [(m[1], m[2] or "", m[3] or "") for m in VARIABLE.finditer(text)]


def resolve(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of ``${A}``, ``${A:-default}`` and ``${A:?message}``."""
    def one(m: re.Match[str]) -> str:
        name, op, rest = m[1], m[2] or "", m[3] or ""
        if op == ":?" and not env.get(name):
            raise KeyError(f"{name}: {rest}")
        return env.get(name) or (rest if op == ":-" else "")

    return VARIABLE.sub(one, value)


def documented(name: str) -> bool:
    return name in setting_names() or any(name.startswith(p) for p in THIRD_PARTY)


def seconds(duration: str) -> float:
    """A compose duration such as ``1m30s`` or ``650s``."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (KEYWORD, arguments) per build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"instruction before FROM: {line}"
        stages[-1].append((keyword.upper(), args.strip()))
    return stages


def stage_name(stage: list[tuple[str, str]]) -> str:
    parts = stage[0][1].split()
    return parts[2] if len(parts) == 3 and parts[1].lower() == "as" else ""


def pinned(image: str) -> bool:
    """``name:tag`` with a version in the tag, never ``latest``."""
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(c.isdigit() for c in tag)


# --- compose: services, health, restarts ---------------------------------------------------

def test_compose_has_exactly_the_services_of_the_stack():
    assert set(compose()["services"]) == SERVICES


def test_images_are_official_and_pinned_by_tag():
    images = {name: spec.get("image", "") for name, spec in compose()["services"].items()}
    assert images["postgis"].startswith("postgis/postgis:")
    assert images["rabbitmq"].startswith("rabbitmq:") and images["rabbitmq"].endswith(
        "-management")
    assert images["redis"].startswith("redis:")
    for name in INFRA:
        assert pinned(images[name]), images[name]
    for name in ROLES:
        assert service(name)["build"]["dockerfile"] == "docker/Dockerfile"
    for stage in dockerfile_stages():
        base = stage[0][1].split()[0]
        assert pinned(base) and "slim" in base, base


def test_every_service_has_a_healthcheck_and_comes_back_when_it_dies():
    for name, spec in compose()["services"].items():
        test = spec.get("healthcheck", {}).get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        assert spec.get("restart") in ("always", "unless-stopped"), name


def test_app_services_start_after_their_dependencies_are_healthy():
    specs = compose()["services"]
    needs = {"worker": set(INFRA), "dashboard": set(INFRA), "scheduler": {"rabbitmq"}}
    for name, wanted in needs.items():
        depends = specs[name]["depends_on"]
        assert set(depends) >= wanted, name
        for target, how in depends.items():
            assert how == {"condition": "service_healthy"}, (name, target)
            assert "healthcheck" in specs[target]


def test_worker_gets_the_time_its_shutdown_timeout_promises():
    command = shlex.split(service("worker")["command"])
    if "--worker-shutdown-timeout" in command:
        timeout_ms = int(command[command.index("--worker-shutdown-timeout") + 1])
    else:
        from dramatiq.cli import make_argument_parser

        timeout_ms = make_argument_parser().get_default("worker_shutdown_timeout")
    assert seconds(service("worker")["stop_grace_period"]) >= timeout_ms / 1000


def test_worker_scales_and_the_scheduler_does_not():
    worker, scheduler = service("worker"), service("scheduler")
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    assert scheduler["deploy"]["replicas"] == 1
    assert scheduler["command"].split()[0] == "periodiq"


def test_database_and_download_cache_live_on_named_volumes():
    volumes = compose()["volumes"]

    def mounts(name: str) -> dict[str, str]:
        pairs = [v.split(":")[:2] for v in service(name).get("volumes", [])]
        return {target: source for source, target in pairs}

    assert mounts("postgis")["/var/lib/postgresql/data"] in volumes
    cache_dir = service("worker")["environment"]["GEOLOAD_CACHE_DIR"]
    assert mounts("worker")[cache_dir] in volumes
    init = mounts("postgis")["/docker-entrypoint-initdb.d/20-geoload.sql"]
    assert "CREATE EXTENSION IF NOT EXISTS postgis" in (ROOT / init).read_text()


def test_dashboard_binds_beyond_loopback_only_with_a_required_token():
    env = service("dashboard")["environment"]
    assert env["GEOLOAD_DASHBOARD_HOST"] == "0.0.0.0"
    [(name, op, _)] = interpolated(env["GEOLOAD_DASHBOARD_TOKEN"])
    assert (name, op) == ("GEOLOAD_DASHBOARD_TOKEN", ":?")
    for port in service("dashboard")["ports"] + service("rabbitmq")["ports"]:
        assert port.startswith("127.0.0.1:"), port


def test_postgis_is_published_on_the_hosts_loopback_at_a_settable_port():
    [port] = service("postgis")["ports"]
    assert resolve(port, {}) == "127.0.0.1:5432:5432"
    assert resolve(port, {"GEOLOAD_POSTGIS_PORT": "15432"}) == "127.0.0.1:15432:5432"
    readme = (ROOT / "README.md").read_text()
    env = env_example(only_set=True)
    database = urlsplit(env["DATABASE_URL"])
    shown = f"postgresql://{database.username}:{database.password}@127.0.0.1:5432/geoload"
    assert shown.replace(database.password or "", "POSTGRES_PASSWORD") in readme


def test_refresh_datasets_unset_means_published_and_empty_turns_it_off():
    from service.settings import from_env

    value = service("worker")["environment"]["GEOLOAD_REFRESH_DATASETS"]
    assert value == "${GEOLOAD_REFRESH_DATASETS-published}"  # not :- (empty must stay empty)
    assert from_env({"GEOLOAD_REFRESH_DATASETS": "published"}).refresh_datasets == ("published",)
    assert from_env({"GEOLOAD_REFRESH_DATASETS": ""}).refresh_datasets == ()


# --- the same commands under compose and honcho ------------------------------------------------

def test_compose_runs_the_procfile_commands():
    entries = procfile()
    assert set(entries) == set(ROLES)
    for role in ROLES:
        words = shlex.split(entries[role])
        assignments = {}
        while "=" in words[0] and not words[0].startswith("-"):
            key, _, value = words.pop(0).partition("=")
            assignments[key] = value
        assert shlex.split(service(role)["command"]) == words, role
        for key, value in assignments.items():  # honcho's inline env is compose's environment
            assert service(role)["environment"][key] == value, (role, key)


def test_worker_holds_one_message_per_thread():
    """Dramatiq's prefetch counts messages in progress per process: one per thread."""
    words = procfile()["worker"].split()
    threads = words[words.index("--threads") + 1]
    assert words[0] == f"dramatiq_queue_prefetch={threads}"


# --- every variable documented -----------------------------------------------------------------

def test_every_variable_compose_uses_is_documented():
    settable = {name for name, _, _ in interpolated(COMPOSE.read_text())}
    given = {name for spec in compose()["services"].values()
             for name in spec.get("environment", {})}
    undocumented = sorted(n for n in settable | given if not documented(n))
    assert undocumented == [], f"document these in service/settings.py: {undocumented}"
    assert settable <= set(env_example()), sorted(settable - set(env_example()))


def test_compose_hands_every_setting_geoload_reads_to_its_processes():
    from service.settings import SETTINGS

    worker, dashboard = service("worker")["environment"], service("dashboard")["environment"]
    read = {s.env for s in SETTINGS if s.field is not None}
    missing = sorted(read - set(worker) - set(dashboard))
    assert missing == [], f"pass these through in compose.yml's x-geoload environment: {missing}"


def test_env_example_documents_every_setting_and_nothing_unknown():
    names = env_example()
    assert set(setting_names()) <= set(names), sorted(set(setting_names()) - set(names))
    unknown = sorted(n for n in names if not documented(n))
    assert unknown == []
    lines = ENV_EXAMPLE.read_text().splitlines()
    for above, line in zip(lines, lines[1:]):  # each variable has a line of prose above it
        if re.match(r"^#?\s*[A-Za-z_][A-Za-z0-9_]*=", line):
            assert above.startswith("# ") and "=" not in above.split()[1], line


def test_env_example_shows_each_settings_real_default():
    from service.settings import SETTINGS

    shown = dict(re.findall(r"^# (GEOLOAD_[A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    examples = {"GEOLOAD_CACHE_DIR", "GEOLOAD_MIRROR"}  # shown as examples, not defaults
    stale = {s.env: (shown[s.env], s.default) for s in SETTINGS
             if s.env in shown and s.env not in examples and shown[s.env] != s.default}
    assert stale == {}


def test_a_copied_env_example_fills_every_required_variable():
    env = env_example(only_set=True)
    spec = compose()
    rendered = resolve(yaml.safe_dump(spec), env)  # raises KeyError on a missing :? variable
    assert "${" not in rendered
    required = {n for n, op, _ in interpolated(COMPOSE.read_text()) if op == ":?"}
    assert required <= set(env), sorted(required - set(env))


def test_env_example_credentials_agree_with_the_services_they_log_into():
    env = env_example(only_set=True)
    postgis = service("postgis")["environment"]
    database = urlsplit(env["DATABASE_URL"])
    assert (database.username, database.password, database.hostname, database.path) == (
        postgis["POSTGRES_USER"], env["POSTGRES_PASSWORD"], "postgis",
        "/" + postgis["POSTGRES_DB"])
    for url in (env["BROKER_URL"], env["GEOLOAD_RABBITMQ_API"]):
        parts = urlsplit(url)
        assert (parts.username, parts.password, parts.hostname) == (
            env["RABBITMQ_DEFAULT_USER"], env["RABBITMQ_DEFAULT_PASS"], "rabbitmq")
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"


# --- Dockerfile and entrypoint -------------------------------------------------------------------

def test_dockerfile_builds_wheels_in_one_stage_and_installs_them_in_the_next():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert any(k == "RUN" and "pip wheel --wheel-dir /wheels" in a for k, a in build)
    installs = [a for k, a in final if k == "RUN" and "pip install" in a]
    assert any(f"from={stage_name(build)}" in a and "--no-index" in a for a in installs)
    assert not any(k == "RUN" and "apt-get install" in a for k, a in final)  # no compiler


def test_image_runs_as_a_non_root_user_behind_the_entrypoint():
    final = dockerfile_stages()[-1]
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    copies = [a for k, a in final if k == "COPY" and "docker/entrypoint.sh" in a]
    [copy] = copies
    target = copy.split()[-1]
    assert '"' + target.rsplit("/", 1)[-1] + '"' in dict(final)["ENTRYPOINT"]
    assert "--chmod=0755" in copy


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "tests"} <= ignored


def test_entrypoint_is_valid_sh_waits_for_the_services_then_execs():
    assert ENTRYPOINT.stat().st_mode & 0o111
    assert subprocess.run(["sh", "-n", str(ENTRYPOINT)]).returncode == 0
    lines = [ln for ln in ENTRYPOINT.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "set -eu"
    assert lines[1].startswith("python -m service.wait postgis redis rabbitmq")
    assert lines[-1] == 'exec "$@"'


def test_entrypoint_starts_the_command_once_the_services_answer(settings):
    env = worker_env(settings, PATH=f"{Path(ROOT, '.venv', 'bin')}:/usr/bin:/bin")
    done = subprocess.run([str(ENTRYPOINT), "sh", "-c", 'echo "started with $0 $1"', "a b", "c"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "started with a b c\n"
    assert "rabbitmq is up" in done.stderr
