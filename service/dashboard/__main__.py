"""``python -m service.dashboard``: serve the dashboard on GEOLOAD_DASHBOARD_HOST:PORT.

Refuses to start on a non-loopback address without GEOLOAD_DASHBOARD_TOKEN
(exit 2). Stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from service import cli
from service import settings as config
from service.dashboard.app import App
from service.dashboard.auth import check_bind
from service.dashboard.web import Server
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
        server = Server(App(settings), settings.dashboard_host, settings.dashboard_port)
    except OSError as exc:
        raise cli.fail(f"can't listen on {settings.dashboard_host}:{settings.dashboard_port}: "
                       f"{exc.strerror or exc}", cli.EXIT_UNAVAILABLE) from exc

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"geoload dashboard on {server.url}/ (PostGIS {mask(settings.database_url)}, "
          f"queue {settings.queue})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
