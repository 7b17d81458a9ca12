"""The HTTP plumbing: a stdlib threading server turning requests into :class:`Request`
and writing back :class:`Response`. No framework: the dashboard serves a handful of
routes to a handful of people, and the standard library does that well.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("service.dashboard")
#: Larger request bodies are refused: every action takes a few small fields.
MAX_BODY = 64 * 1024


class HTTPError(Exception):
    """An answer other than success, with a message for a person."""

    def __init__(self, status: int, message: str, *, hint: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return str(value) if value is not None else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.header("Cookie") or "")
        except CookieError:
            return {}
        return {k: m.value for k, m in jar.items()}

    @property
    def is_form(self) -> bool:
        return (self.header("Content-Type") or "").startswith("application/x-www-form-urlencoded")

    def fields(self) -> dict[str, Any]:
        """The body as a dict: a form's last value per field, or a JSON object."""
        if not self.body:
            return {}
        if self.is_form:
            return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise HTTPError(400, f"the request body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise HTTPError(400, "the request body must be a JSON object")
        return data


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handle: Handler) -> None:
        self.handle_request_fn = handle
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended badly", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "geoload-dashboard"
    sys_version = ""
    timeout = 30
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(Response(413, b'{"error": "request body too large"}\n',
                                 "application/json"))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
        self._write(self.server.handle_request_fn(request))

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class Server:
    """A listening dashboard; ``url`` is where it answers."""

    def __init__(self, handle: Handler, host: str, port: int) -> None:
        self._httpd = _Server((host, port), handle)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextlib.contextmanager
def serving(handle: Handler, host: str, port: int) -> Iterator[Server]:
    """Serve in a background thread for the ``with`` block (tests, embedding)."""
    server = Server(handle, host, port)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)
