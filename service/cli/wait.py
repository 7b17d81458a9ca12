"""``python -m service.wait [postgis] [redis] [rabbitmq] --timeout 60``: block until reachable.

Containers start in any order and a database takes a while to accept
connections, so every geoload process starts behind this wait (the Docker
entrypoint, the honcho recipe in docs/operations.md). Two more targets serve as health
checks: ``worker`` (a worker process on this host sends heartbeats) and
``dashboard`` (the dashboard answers ``/healthz``). Exit 0 once all are up,
3 naming the first one that never came.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from service import cli
from service import settings as config
from service.errors import ServiceUnavailable
from service.settings import Settings

SERVICES = ("postgis", "redis", "rabbitmq")
TARGETS = (*SERVICES, "worker", "dashboard")
POLL_S = 1.0


def _postgis(settings: Settings) -> None:
    from service.postgres import connect

    with connect(settings, application_name="geoload-wait") as conn:
        conn.execute("SELECT 1")


def _redis(settings: Settings) -> None:
    from service.live import ping

    ping(settings)


def _rabbitmq(settings: Settings) -> None:
    from service.pipeline.broker import check, make_broker

    broker = make_broker(settings)
    try:
        check(broker, settings)
    finally:
        broker.close()


def _worker(settings: Settings) -> None:
    """A heartbeat from this host on our queue: the worker tree is up and consuming."""
    import os

    from service.live import Live, ping

    ping(settings)
    host = os.uname().nodename
    mine = [w for w in Live(settings).workers()
            if str(w.get("worker", "")).rsplit(":", 1)[0] == host
            and w.get("queue") == settings.queue]
    if not mine:
        exc = ServiceUnavailable("A worker", host, f"no heartbeat on queue {settings.queue!r}")
        exc.hint = "start the workers on this host (Procfile entry worker)"
        raise exc


def _dashboard(settings: Settings) -> None:
    """The dashboard answers ``/healthz`` (no token needed) with 200."""
    import urllib.error
    import urllib.request

    host = "127.0.0.1" if settings.dashboard_host in ("0.0.0.0", "") else settings.dashboard_host
    url = f"http://{host}:{settings.dashboard_port}/healthz"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with direct.open(url, timeout=3) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ServiceUnavailable("The dashboard", url, str(reason)) from exc


CHECKS: dict[str, Callable[[Settings], None]] = {
    "postgis": _postgis, "redis": _redis, "rabbitmq": _rabbitmq,
    "worker": _worker, "dashboard": _dashboard,
}


def wait_for(settings: Settings, targets: list[str], *, timeout: float,
             interval: float = POLL_S, say: Callable[[str], None] = print) -> None:
    """Check ``targets`` in order until each answers; the last error once ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    for target in targets:
        reported = ""
        while True:
            try:
                CHECKS[target](settings)
                break
            except ServiceUnavailable as exc:
                if time.monotonic() + interval > deadline:
                    exc.hint = f"gave up after {timeout:g} s; {exc.hint}"
                    raise
                if str(exc) != reported:
                    say(f"waiting: {exc.problem}")
                    reported = str(exc)
            time.sleep(interval)
        say(f"{target} is up")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m service.wait",
                                     description="Wait until geoload's services are reachable.")
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"any of {', '.join(TARGETS)} (default: {' '.join(SERVICES)})")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait in all (default 60)")
    parser.add_argument("--quiet", action="store_true", help="print nothing unless it fails")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    targets = list(dict.fromkeys(args.targets)) or list(SERVICES)

    def say(line: str) -> None:
        if not args.quiet:
            print(f"geoload: {line}", file=sys.stderr, flush=True)

    wait_for(config.get(), targets, timeout=args.timeout, say=say)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
