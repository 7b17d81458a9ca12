"""Serving the dashboard with uvicorn, on a socket bound first.

Binding before uvicorn starts makes a busy port a clear error (and port 0 a known
port), instead of uvicorn's log line and exit 1. The HTTP parser is h11, chosen
explicitly: it refuses malformed framing (a negative ``Content-Length``) before the
application sees the request, whatever else is installed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

#: Seconds a shutdown waits for requests in flight before closing their connections.
GRACEFUL_S = 5


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (an IPv6 address may come in brackets)."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.create_server((bare, port), family=family)
    # Accepted connections inherit it. asyncio sets TCP_NODELAY only on sockets whose proto
    # is IPPROTO_TCP, and create_server's is 0: without this, a response's headers and
    # body wait on the client's delayed ACK, 44 ms per keep-alive request (measured).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Server:
    """uvicorn serving ``app`` on ``sock``; ``url`` is where it answers."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self._uvicorn = uvicorn.Server(uvicorn.Config(
            app, http="h11", lifespan="on", log_config=None, proxy_headers=False,
            server_header=False, headers=[("Server", "geoload-dashboard")],
            timeout_graceful_shutdown=GRACEFUL_S))

    def run(self) -> None:
        """Serve until :meth:`stop`, or SIGTERM/SIGINT when run in the main thread."""
        self._uvicorn.run(sockets=[self.sock])

    def stop(self) -> None:
        self._uvicorn.should_exit = True

    @property
    def started(self) -> bool:
        return bool(self._uvicorn.started)


@contextlib.contextmanager
def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[Server]:
    """Serve in a background thread for the ``with`` block (tests, embedding)."""
    server = Server(app, listen(host, port))
    thread = threading.Thread(target=server.run, name="dashboard-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError(f"the dashboard did not start on {server.url}")
        yield server
    finally:
        server.stop()
        thread.join(timeout=GRACEFUL_S + 5)
        server.sock.close()
