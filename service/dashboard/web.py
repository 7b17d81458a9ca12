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
    """One request; its body is read from the connection only when a route asks for it,
    which is after the app has checked the Host and the credentials."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    read_body: Callable[[], bytes] = field(default=lambda: b"", repr=False)
    _body: bytes | None = field(default=None, init=False, repr=False)

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = self.read_body()
        return self._body

    @property
    def body_read(self) -> bool:
        return self._body is not None

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


def body_length(headers: Message) -> int:
    """The request body's length, from a Content-Length that can be trusted.

    Checked before a byte of the body is read: a negative length (``rfile.read(-1)``
    reads until the client stops), one that isn't a number, several, a chunked body
    (the standard library does not decode it; it would be read as the next request)
    and anything over :data:`MAX_BODY` are refused.
    """
    if headers.get("Transfer-Encoding") is not None:
        raise HTTPError(411, "chunked request bodies are not accepted; send Content-Length")
    values = headers.get_all("Content-Length") or []
    if not values:
        return 0
    text = str(values[0]).strip()
    if len(values) > 1 or not text.isdigit() or not text.isascii():
        raise HTTPError(400, f"bad Content-Length {', '.join(map(str, values))!r}: "
                             "one non-negative integer is expected")
    if int(text) > MAX_BODY:
        raise HTTPError(413, f"request body too large: {int(text):,} bytes, the limit is "
                             f"{MAX_BODY:,}")
    return int(text)


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
        try:
            length = body_length(self.headers)
        except HTTPError as exc:
            error = json.dumps({"error": exc.message, "status": exc.status}) + "\n"
            self._write(self._closing(Response(exc.status, error.encode(), "application/json")))
            return
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query), self.headers,
                          lambda: self.rfile.read(length) if length else b"")
        response = self.server.handle_request_fn(request)
        if length and not request.body_read:
            response = self._closing(response)  # the unread body can't pass for a request
        self._write(response)

    def _closing(self, response: Response) -> Response:
        self.close_connection = True
        response.headers.append(("Connection", "close"))
        return response

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
