"""Issue #5, "Security": quoted identifiers, https-only bounded downloads, no leaked secrets.

The whole module runs the way docs/operations.md tells operators to: workers and CLI log
in to PostGIS as a least-privilege role with a password, to Redis and RabbitMQ as
users with passwords, and fetch from a mirror whose URL carries a login. Every
secret is unique to this session, so the last test can look for them everywhere
geoload writes: CLI output, worker logs, ``geoload.*`` tables, Redis, the cache.
"""

from __future__ import annotations

import http.server
import os
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
import redis
import requests
from psycopg import sql

from devtools.workers import WorkerGroup
from service.catalog import gadm
from service.errors import BadSource, ConfigError
from service.fetch import fetch
from service.fetch.http import Limits, download
from service.pipeline.messages import FETCH, Next
from service.settings import Settings
from tests.conftest import ADMIN_URL, TEST_DB, purge_queue
from tests.faults.harness import (
    Stack,
    assert_refused,
    dead_letter,
    module_settings,
    retries,
    running_stack,
)
from tests.support import craft

pytestmark = pytest.mark.faults

#: A small download cap (the tiny files are < 0.9 MB) and short timeouts, so faults are quick.
WORKER_ENV = {"GEOLOAD_MAX_DOWNLOAD_BYTES": "1500000", "GEOLOAD_READ_TIMEOUT": "1",
              "GEOLOAD_CONNECT_TIMEOUT": "1", "GEOLOAD_MAX_RETRIES": "2",
              "GEOLOAD_CHUNK_FEATURES": "60"}

#: docs/operations.md, "A least-privilege database role for workers", with this session's names:
#: run once by an administrator, the first part anywhere, the second in geoload's database.
ROLE_SQL = """
CREATE ROLE {role} LOGIN PASSWORD {password} NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT CONNECT, CREATE ON DATABASE {database} TO {role};
CREATE ROLE {reader} LOGIN;
GRANT CONNECT ON DATABASE {database} TO {reader};
"""
DATABASE_SQL = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA geoload AUTHORIZATION {role};
CREATE SCHEMA geoload_staging AUTHORIZATION {role};
CREATE SCHEMA gadm AUTHORIZATION {role};
CREATE SCHEMA timezone AUTHORIZATION {role};
GRANT USAGE ON SCHEMA gadm, timezone TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {role} GRANT SELECT ON TABLES TO {reader};
"""
SCHEMAS = ("geoload", "geoload_staging", "gadm", "timezone")


@dataclass(frozen=True)
class Logins:
    """This session's users and passwords; every password is a needle for the leak check."""

    role: str = f"geoload_worker_{os.getpid()}"
    reader: str = f"geoload_reader_{os.getpid()}"
    db_password: str = f"pg-{secrets.token_hex(8)}"
    redis_user: str = f"geoload-test-{os.getpid()}"
    redis_password: str = f"redis-{secrets.token_hex(8)}"
    amqp_user: str = f"geoload-test-{os.getpid()}"
    amqp_password: str = f"amqp-{secrets.token_hex(8)}"
    mirror_login: str = f"mirror:mirror-{secrets.token_hex(8)}"
    wrong_password: str = f"wrong-{secrets.token_hex(8)}"

    @property
    def passwords(self) -> list[str]:
        return [self.db_password, self.redis_password, self.amqp_password,
                self.mirror_login.split(":")[1], self.wrong_password]

    def database_url(self, port: int = 5432, password: str | None = None) -> str:
        return (f"postgresql://{self.role}:{password or self.db_password}@127.0.0.1:{port}/"
                f"{TEST_DB}")

    def redis_url(self, port: int = 6379, password: str | None = None) -> str:
        return f"redis://{self.redis_user}:{password or self.redis_password}@127.0.0.1:{port}/15"

    def broker_url(self, port: int = 5672, password: str | None = None) -> str:
        return f"amqp://{self.amqp_user}:{password or self.amqp_password}@127.0.0.1:{port}/%2F"


LOGINS = Logins()


# --- the stack, logged in everywhere with passwords -------------------------------------

def admin_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB


def _names() -> dict[str, sql.Composable]:
    return {"role": sql.Identifier(LOGINS.role), "reader": sql.Identifier(LOGINS.reader),
            "password": sql.Literal(LOGINS.db_password), "database": sql.Identifier(TEST_DB)}


def least_privilege_database(url: str) -> None:
    """A database prepared as docs/operations.md says, for a role that is no superuser."""
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))
        conn.execute(sql.SQL(ROLE_SQL).format(**_names()))
        conn.execute(sql.SQL(DATABASE_SQL).format(**_names()))


def _drop_roles() -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))
        for role in (LOGINS.role, LOGINS.reader):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextmanager
def service_users(settings: Settings) -> Iterator[None]:
    """A Redis ACL user and a RabbitMQ user with this session's passwords, removed after."""
    admin = redis.Redis.from_url(settings.redis_url)
    admin.execute_command("ACL", "SETUSER", LOGINS.redis_user, "on",
                          f">{LOGINS.redis_password}", "~*", "&*", "+@all")
    api = settings.rabbitmq_api.rstrip("/")
    user = f"{api}/api/users/{LOGINS.amqp_user}"
    requests.put(user, json={"password": LOGINS.amqp_password, "tags": ""},
                 timeout=10).raise_for_status()
    requests.put(f"{api}/api/permissions/%2F/{LOGINS.amqp_user}",
                 json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    try:
        yield
    finally:
        admin.execute_command("ACL", "DELUSER", LOGINS.redis_user)
        requests.delete(user, timeout=10)


@pytest.fixture(scope="module")
def stack(base_settings: Settings, tmp_path_factory) -> Iterator[Stack]:
    with service_users(base_settings):
        try:
            with running_stack(base_settings, tmp_path_factory.mktemp("security"),
                               inspect_url=admin_url(), prepare=least_privilege_database,
                               mirror_login=LOGINS.mirror_login,
                               DATABASE_URL=LOGINS.database_url(),
                               REDIS_URL=LOGINS.redis_url(), BROKER_URL=LOGINS.broker_url(),
                               **WORKER_ENV) as running:
                yield running
        finally:
            _drop_roles()


# --- SQL: identifiers from a source file are quoted, never formatted -----------------------

HOSTILE_FIELDS = ('x"; DROP TABLE gadm.adm_0; --', "name'); DELETE FROM geoload.loads; --",
                  "%s %(x)s {0} $1", "Ünïcødé naïve", "back\\slash")
HOSTILE_LAYER = 'ADM_5"; DROP TABLE gadm.adm_5; --'


#: Extra fields (kept, lower-cased) whose names and values are SQL.
WITH_HOSTILE_FIELDS = craft.chain(*(craft.set_field(name, lambda n, value=name: pa.array(
    [value] * n)) for name in HOSTILE_FIELDS))


def _live_tables(stack: Stack) -> set[str]:
    rows = stack.query("SELECT schemaname || '.' || tablename AS t FROM pg_tables "
                       "WHERE schemaname = ANY(%s)", list(SCHEMAS))
    return {r["t"] for r in rows}


def test_hostile_field_and_column_names_arrive_quoted(stack, previous, tmp_path):
    tables, runs = _live_tables(stack), stack.query("SELECT count(*) AS n FROM geoload.loads")
    stack.mirror.put("gadm", craft.craft_gadm(
        stack.mirror.good.gadm_gpkg, tmp_path / "hostile.zip", {"ADM_1": WITH_HOSTILE_FIELDS},
        fid='fid"; DROP TABLE gadm.adm_1; --', geometry_name="geom'); DROP TABLE x; --"))
    run = stack.enqueue("gadm")
    assert run.code == 0, run.output[-3000:]
    columns = [r["column_name"] for r in stack.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'gadm' "
        "AND table_name = 'adm_1' ORDER BY ordinal_position")]
    expected = [f.column for f in gadm.level_fields(1)]
    assert columns == ["fid", *expected, *(n.lower() for n in HOSTILE_FIELDS), "geom"]
    for name in HOSTILE_FIELDS:
        values = stack.query(sql.SQL("SELECT DISTINCT {} AS v FROM gadm.adm_1").format(
            sql.Identifier(name.lower())))
        assert [r["v"] for r in values] == [name]
    assert _live_tables(stack) == tables  # nothing dropped, nothing made
    assert {t: n for t, (n, _) in stack.snapshot().items()} == {
        t: n for t, (n, _) in previous.items()}
    assert stack.query("SELECT count(*) AS n FROM geoload.loads")[0]["n"] == runs[0]["n"] + 1


def test_hostile_layer_name_is_reported_as_data(stack, previous, tmp_path):
    before = stack.snapshot()
    stack.mirror.put("gadm", craft.craft_gadm(stack.mirror.good.gadm_gpkg, tmp_path / "h.zip",
                                              rename={"ADM_5": HOSTILE_LAYER}))
    run = stack.enqueue("gadm")
    load = assert_refused(run, "gadm", "plan_load", r"layer 'ADM_5' can't be read",
                          file="gadm_410-levels.gpkg")
    assert HOSTILE_LAYER in load["error"]
    stack.assert_unchanged(before)


# --- Downloads: https only, a size cap, timeouts ------------------------------------------

def test_plain_http_is_refused_without_an_http_mirror(stack, tmp_path):
    """The check happens before any request: the server never hears from us."""
    plain = replace(gadm.GADM, source=replace(gadm.GADM.source, url=stack.mirror.url
                                              + stack.mirror.paths["gadm"]))
    no_mirror = replace(stack.settings, mirror=None, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"refusing to download http://127\.0\.0\.1:\d+/gadm/"
                       r"gadm4\.1/gadm_410-levels\.zip over http\. What to do: upstream URLs "
                       r"must be https"):
        fetch(plain, no_mirror)
    assert stack.mirror.gets("gadm") == []
    assert fetch(plain, replace(no_mirror, mirror=stack.mirror.url)).path.exists()


@pytest.fixture()
def https_redirect(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """An https server (self-signed, trusted by the returned CA file) that redirects to http."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    target: dict[str, str] = {}

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self.send_response(302)
            self.send_header("Location", target["url"] + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert, target
    finally:
        server.shutdown()
        server.server_close()


def test_https_redirect_to_plain_http_is_not_followed(stack, https_redirect, tmp_path,
                                                     monkeypatch):
    origin, cert, target = https_redirect
    target["url"] = stack.mirror.url
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # as an operator trusts a private CA
    with pytest.raises(BadSource, match=r"redirects to http://127\.0\.0\.1:\d+/gadm/.*, which "
                       r"is not https"):
        download(origin + stack.mirror.paths["gadm"], tmp_path / "x.zip",
                 limits=Limits(5, 5, 10**9))
    assert stack.mirror.gets("gadm") == [] and not list(tmp_path.glob("x.zip*"))


def test_download_over_the_size_cap_is_refused_at_once(stack, previous, tmp_path):
    before = stack.snapshot()
    padded = craft.zip_files(tmp_path / "big.zip", {"gadm_410-levels.gpkg": stack.mirror.good
                                                    .gadm_gpkg, "padding": os.urandom(2 << 20)})
    stack.mirror.put("gadm", padded)
    run = stack.enqueue("gadm")
    assert_refused(run, "gadm", FETCH, rf"is {padded.stat().st_size:,} bytes, over the "
                   r"1,500,000 cap", file=_masked_mirror(stack))
    assert len(stack.mirror.gets("gadm")) == 1
    assert retries(dead_letter(stack, run, FETCH)) == 0
    assert not list((stack.settings.cache_dir / "gadm").glob("*.part"))
    stack.assert_unchanged(before)


def test_a_server_slower_than_the_read_timeout_is_retried(stack, previous):
    stack.mirror.fault("gadm", "delay", seconds=3, once=True)
    run = stack.enqueue("gadm")
    assert run.code == 0, run.output[-3000:]
    assert len(stack.mirror.gets("gadm")) == 2  # given up after 1 s, then retried
    assert run.seconds < 15
    assert stack.snapshot() == previous  # the good file, loaded again


def test_a_trickling_server_cannot_hold_a_worker(stack, previous):
    """4 kB/s would take minutes: each attempt gives up after one read-timeout window."""
    before = stack.snapshot()
    stack.mirror.fault("gadm", "throttle", rate=4000)
    run = stack.enqueue("gadm")
    assert_refused(run, "gadm", FETCH, r"stalled: [\d,]+ bytes in 1 s",
                   file=_masked_mirror(stack), error_type="UpstreamUnavailable")
    attempts = stack.mirror.gets("gadm")
    assert len(attempts) == 3 and all(r.bytes_sent < 20_000 for _, r in attempts)
    assert run.seconds < 30
    stack.assert_unchanged(before)
    stack.mirror.server.clear_faults()
    assert stack.enqueue("gadm").code == 0  # the worker is free again


# --- Secrets: never logged, shown or stored -----------------------------------------------

def _masked_mirror(stack: Stack) -> str:
    user = LOGINS.mirror_login.split(":")[0]
    return f"http://{user}:***@127.0.0.1:{stack.mirror.server.port}/gadm/"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


UNREACHABLE = {
    "PostGIS down": ("PostGIS", "DATABASE_URL", LOGINS.database_url),
    "PostGIS down, password in the query": ("PostGIS", "DATABASE_URL", lambda port: (
        f"postgresql://{LOGINS.role}@127.0.0.1:{port}/{TEST_DB}?password={LOGINS.db_password}")),
    "PostGIS down, key=value string": ("PostGIS", "DATABASE_URL", lambda port: (
        f"host=127.0.0.1 port={port} user={LOGINS.role} password={LOGINS.db_password} "
        f"dbname={TEST_DB}")),
    "Redis down": ("Redis", "REDIS_URL", LOGINS.redis_url),
    "Redis refuses the password": ("Redis", "REDIS_URL", lambda port: LOGINS.redis_url(
        password=LOGINS.wrong_password)),
    "RabbitMQ down": ("RabbitMQ", "BROKER_URL", LOGINS.broker_url),
    "RabbitMQ refuses the password": ("RabbitMQ", "BROKER_URL", lambda port: LOGINS.broker_url(
        password=LOGINS.wrong_password)),
}


@pytest.mark.parametrize("case", UNREACHABLE)
def test_cli_names_an_unreachable_service_with_its_url_masked(stack, case):
    service, variable, url = UNREACHABLE[case]
    broken = url(_closed_port())
    masked = broken
    for password in LOGINS.passwords:
        masked = masked.replace(password, "***")
    started = time.monotonic()
    done = stack.cli("service.enqueue", "gadm", "--wait", **{variable: broken})
    assert done.returncode == 3, done.stderr
    assert f"geoload: {service} can't be reached at {masked} (" in done.stderr
    assert time.monotonic() - started < 10


OUTAGES = {
    "PostGIS": ("DATABASE_URL", LOGINS.database_url,
                f"PostGIS can't be reached at postgresql://{LOGINS.role}:***@127.0.0.1:"),
    "RabbitMQ": ("BROKER_URL", LOGINS.broker_url, "Consumer encountered a connection error"),
}


@pytest.mark.parametrize("service", OUTAGES)
def test_workers_log_an_outage_without_passwords(stack, tmp_path, service):
    """Workers (on a queue of their own) that can't reach a service say so in their log."""
    variable, url, says = OUTAGES[service]
    queue = f"{stack.settings.queue}-outage"
    settings = module_settings(stack.settings, GEOLOAD_QUEUE=queue,
                               **{variable: url(_closed_port())})
    group = WorkerGroup(settings, processes=1, threads=1, log=tmp_path / "workers.log")
    try:
        if service == "PostGIS":
            group.wait_ready()
            _send_to(replace(stack.settings, queue=queue), Next(FETCH, ("a-run", "gadm")))
        _wait_for_log(group, says)
    finally:
        group.stop()
        stack.transcript.append(group.tail(1 << 20))
        purge_queue(replace(stack.settings, queue=queue))


def _send_to(settings: Settings, step: Next) -> None:
    from service.pipeline.broker import make_broker, send

    broker = make_broker(settings)
    try:
        send(broker, settings, [step])
    finally:
        broker.close()


def _wait_for_log(group: WorkerGroup, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in group.tail(1 << 20):
        assert time.monotonic() < deadline, group.tail()
        time.sleep(0.2)


def test_datasets_listing_masks_the_mirror_login(stack):
    done = stack.cli("service.datasets")
    assert done.returncode == 0
    assert LOGINS.mirror_login not in done.stdout


def test_no_password_is_logged_shown_or_stored(stack, previous):
    """Runs last: everything the module did, failures included, is searched for passwords."""
    stack.mirror.fault("gadm", "status", status=404)
    run = stack.enqueue("gadm")
    assert _masked_mirror(stack) in run.load("gadm")["error"]
    places = {
        "CLI output": "\n".join(stack.transcript),
        "worker log": stack.workers.log.read_text(errors="replace"),
        "geoload tables": _bookkeeping_text(stack),
        "Redis": _redis_text(stack.settings),
        "cache": "\n".join(p.read_text(errors="replace") for p in
                           stack.settings.cache_dir.rglob("*.json")),
    }
    assert all(places.values())
    leaks = {place: [p for p in LOGINS.passwords if p in text] for place, text in places.items()}
    assert leaks == {place: [] for place in places}


def _bookkeeping_text(stack: Stack) -> str:
    rows = []
    for table in ("runs", "loads", "load_layers", "chunks"):
        rows += stack.query(sql.SQL("SELECT row_to_json(t)::text AS j FROM {} t").format(
            sql.Identifier("geoload", table)))
    return "\n".join(r["j"] for r in rows)


#: How to read every value of each Redis type.
REDIS_READERS = {
    b"string": lambda client, key: [client.get(key)],
    b"list": lambda client, key: client.lrange(key, 0, -1),
    b"hash": lambda client, key: [*client.hkeys(key), *client.hvals(key)],
    b"set": lambda client, key: list(client.smembers(key)),
    b"zset": lambda client, key: client.zrange(key, 0, -1),
}


def _redis_text(settings: Settings) -> str:
    """Every key and value in the test Redis database (results, live state, heartbeats)."""
    client = redis.Redis.from_url(settings.redis_url)
    found = []
    for key in client.scan_iter(count=1000):
        found += [key, *REDIS_READERS.get(client.type(key), lambda c, k: [])(client, key)]
    return "\n".join(value.decode(errors="replace") for value in found if value)


# --- Least privilege ------------------------------------------------------------------------

def test_the_documented_role_suffices_and_is_no_superuser(stack, previous):
    """``previous`` loaded both datasets as the role; readers see the data, not the staging."""
    role = stack.query("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                       "WHERE rolname = %s", LOGINS.role)
    assert role == [{"rolsuper": False, "rolcreatedb": False, "rolcreaterole": False}]
    owners = stack.query("SELECT DISTINCT r.rolname FROM pg_class c JOIN pg_namespace n "
                         "ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner "
                         "WHERE n.nspname = ANY(%s)", list(SCHEMAS))
    assert owners == [{"rolname": LOGINS.role}]
    reader = ADMIN_URL.replace("postgres@", f"{LOGINS.reader}@").rsplit("/", 1)[0] + "/" + TEST_DB
    with psycopg.connect(reader, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM gadm.adm_0").fetchone()[0] == previous[
            "gadm.adm_0"][0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM gadm.adm_0")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM geoload.loads")
