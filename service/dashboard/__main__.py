"""``python -m service.dashboard``: serve the dashboard on GEOLOAD_DASHBOARD_HOST:PORT.

Refuses to start on a non-loopback address without GEOLOAD_DASHBOARD_TOKEN
(exit 2), or when it can't listen (exit 3). Stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from service import cli
from service import settings as config
from service.dashboard.app import create_app
from service.dashboard.auth import check_bind
from service.dashboard.server import Server, listen
from service.urls import mask


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m service.dashboard",
                            description="Serve geoload's dashboard (settings: "
                                        "GEOLOAD_DASHBOARD_HOST, _PORT, _TOKEN).").parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    settings = config.get()
    check_bind(settings)
    try:
        sock = listen(settings.dashboard_host, settings.dashboard_port)
    except OSError as exc:
        raise cli.fail(f"can't listen on {settings.dashboard_host}:{settings.dashboard_port}: "
                       f"{exc.strerror or exc}", cli.EXIT_UNAVAILABLE) from exc
    server = Server(create_app(settings), sock)
    # uvicorn stops gracefully on SIGTERM, then raises it again for the handler it
    # replaced: with the default one, the process would die by the signal (exit -15).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    print(f"geoload dashboard on {server.url}/ (PostGIS {mask(settings.database_url)}, "
          f"queue {settings.queue})", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
