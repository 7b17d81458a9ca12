"""A local HTTP file server with the semantics a resuming downloader relies on, plus faults.

Serves files under a root with ``Content-Length``, strong ``ETag``, ``Last-Modified``,
conditional GETs (304), single byte ranges (206/416) and ``If-Range``. Tests inject faults
per path at runtime (error statuses, HTML error pages, connections cut mid-body, throttling,
delays, dropped connections) and read a log of every request to check what a client did.
Bodies are streamed in chunks, never read whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

CHUNK = 64 * 1024
FAULT_KINDS = ("status", "html", "truncate", "throttle", "delay", "drop")
_BODY_FAULTS = ("truncate", "throttle")  # not consumed by HEAD: a HEAD has no body to spoil
DEFAULT_HTML = (
    "<!DOCTYPE html>\n<html><head><title>Service Temporarily Unavailable</title></head>\n"
    "<body><h1>Service Temporarily Unavailable</h1>\n<p>The server is temporarily unable "
    "to service your request due to maintenance downtime. Please try again later.</p>\n"
    "</body></html>\n"
)


class Headers(dict[str, str]):
    """Request headers as sent; lookups ignore case, as HTTP header names do."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(items)
        self._names = {k.lower(): k for k in self}

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._names.get(key.lower(), key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._names

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """Case-insensitive ``dict.get``."""
        return self[key] if key in self else default  # noqa: SIM401 - self.get is this


@dataclass
class Request:
    """One logged request. Unpacks like ``(method, path, headers, status, bytes_sent)``.

    ``bytes_sent`` counts body bytes and is updated before each chunk is written, so it is
    final by the time the client has read the response. ``status`` is 0 for a dropped
    connection.
    """

    method: str
    path: str
    headers: Headers
    status: int = 0
    bytes_sent: int = 0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.method, self.path, self.headers, self.status, self.bytes_sent))


@dataclass
class Fault:
    """A fault armed for a path; ``remaining`` None means until cleared."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    remaining: int | None = None


class DataServer:
    """A running server: ``url``, ``fault()``, ``clear_faults()`` and the request ``log``."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.log: list[Request] = []
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self.stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def url_for(self, path: str | Path) -> str:
        """The URL of a path relative to the root (or of an absolute path under it)."""
        p = Path(path)
        rel = p.resolve().relative_to(self.root).as_posix() if p.is_absolute() else p.as_posix()
        return f"{self.url}/{rel.lstrip('/')}"

    def fault(self, path: str, kind: str, *, once: bool | int = False, **params: Any) -> None:
        """Arm a fault for ``path`` (URL path, relative path, full URL, or ``"*"``).

        Kinds and their parameters:

        - ``status``: ``status=503``, optional ``body`` (str/bytes), ``headers`` (dict).
        - ``html``: 200 ``text/html`` error page instead of the file; optional ``body``,
          ``status``.
        - ``truncate``: real headers (full ``Content-Length``), then the connection is
          closed after ``after`` body bytes (default: half of the body).
        - ``throttle``: send at most ``rate`` bytes per second.
        - ``delay``: wait ``seconds`` before answering normally.
        - ``drop``: close the connection without any response.

        ``once=True`` applies the fault to the next request only, ``once=N`` to the next N;
        then the path is served normally again. Body faults (truncate, throttle) are neither
        applied to nor consumed by HEAD requests.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {FAULT_KINDS}")
        if kind == "throttle" and float(params.get("rate", 0)) <= 0:
            raise ValueError("throttle needs rate=<bytes per second> > 0")
        remaining = None if once is False else (1 if once is True else int(once))
        with self._lock:
            self._faults[_key(path)] = Fault(kind, dict(params), remaining)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def clear_log(self) -> None:
        """Forget logged requests."""
        with self._lock:
            self.log.clear()

    def requests(self, path: str | None = None) -> list[Request]:
        """A snapshot of the log, optionally only for one path."""
        with self._lock:
            entries = list(self.log)
        return entries if path is None else [e for e in entries if e.path == _key(path)]

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"testdata-http-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut open connections (idle keep-alives, throttled bodies)."""
        self.stopping.set()
        self._httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- used by the handler ---------------------------------------------------------

    def take_fault(self, path: str, method: str) -> Fault | None:
        """The fault for this request, counting it against ``once``."""
        with self._lock:
            key = path if path in self._faults else "*"
            fault = self._faults.get(key)
            if fault is None or (method == "HEAD" and fault.kind in _BODY_FAULTS):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[key]
            return fault

    def record(self, entry: Request) -> None:
        """Append to the log."""
        with self._lock:
            self.log.append(entry)

    def track(self, conn: socket.socket, alive: bool) -> None:
        """Remember open connections so :meth:`stop` can cut them."""
        with self._lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def resolve(self, path: str) -> Path | int:
        """The file for a URL path, or an HTTP status: 403 outside the root, 404 missing."""
        if "\x00" in path:
            return 400
        rel = path.lstrip("/")
        if any(part == ".." for part in rel.replace("\\", "/").split("/")):
            return 403
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root):
            return 403
        return target if target.is_file() else 404


@contextlib.contextmanager
def serve(root: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[DataServer]:
    """Run a :class:`DataServer` on ``root`` for the duration of the ``with`` block."""
    server = DataServer(root, host, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def etag_for(path: Path) -> str:
    """Strong validator from inode, size and mtime: changes whenever the file is replaced."""
    st = path.stat()
    digest = hashlib.sha1(f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()
    return f'"{digest}"'


def _key(path: str) -> str:
    """Normalise a fault/log key to a URL path starting with '/'."""
    if path == "*":
        return path
    return "/" + unquote(urlsplit(path).path).lstrip("/")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a throttled body must not hold up shutdown

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 data: DataServer) -> None:
        self.data = data
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response are normal here; stay quiet about them."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and ranges, like real servers
    server_version = "geoload-testdata/1"
    timeout = 60  # idle keep-alive connections do not live forever
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.data.track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.data.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr access log; requests go to ``DataServer.log``."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def _serve(self) -> None:
        data = self.server.data
        path = _key(self.path)
        entry = Request(self.command, path, Headers(self.headers.items()))
        fault = data.take_fault(path, self.command)
        if fault is not None and fault.kind == "delay":
            data.stopping.wait(float(fault.params.get("seconds", 1.0)))
            fault = None
        if fault is not None and fault.kind == "drop":
            data.record(entry)
            self._hang_up()
            return
        if fault is not None and fault.kind == "status":
            status = int(fault.params.get("status", 500))
            body = fault.params.get("body", f"{status} {_phrase(status)}\n")
            self._simple(entry, status, body, "text/plain; charset=utf-8",
                         fault.params.get("headers", {}))
            return
        if fault is not None and fault.kind == "html":
            self._simple(entry, int(fault.params.get("status", 200)),
                         fault.params.get("body", DEFAULT_HTML), "text/html; charset=utf-8")
            return
        target = data.resolve(path)
        if isinstance(target, int):
            self._simple(entry, target, f"{target} {_phrase(target)}\n",
                         "text/plain; charset=utf-8")
            return
        self._file(entry, target, fault)

    def _file(self, entry: Request, target: Path, fault: Fault | None) -> None:
        st = target.stat()
        size = st.st_size
        etag = etag_for(target)
        last_modified = formatdate(st.st_mtime, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if _not_modified(entry.headers, etag, int(st.st_mtime)):
            self._head(entry, 304, validators)
            return
        start, stop, status = 0, size, 200
        spec = entry.headers.get("Range")
        if_range = entry.headers.get("If-Range")
        if spec is not None and (if_range is None or _if_range_ok(if_range, etag, st)):
            wanted = _parse_range(spec, size)
            if wanted == "unsatisfiable":
                self._simple(entry, 416, "416 Range Not Satisfiable\n",
                             "text/plain; charset=utf-8",
                             {"Content-Range": f"bytes */{size}", **validators})
                return
            if isinstance(wanted, tuple):
                start, stop = wanted
                status = 206
        headers = {"Content-Type": _content_type(target), "Content-Length": str(stop - start),
                   "Accept-Ranges": "bytes", **validators}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        self._head(entry, status, headers)
        if self.command == "GET":
            self._body(entry, target, start, stop - start, fault)

    def _body(self, entry: Request, target: Path, start: int, length: int,
              fault: Fault | None) -> None:
        """Stream ``length`` bytes from ``start``; apply truncate/throttle faults."""
        cut: int | None = None
        rate: float | None = None
        if fault is not None and fault.kind == "truncate":
            cut = min(int(fault.params.get("after", length // 2)), length)
        elif fault is not None and fault.kind == "throttle":
            rate = float(fault.params["rate"])
        chunk = CHUNK if rate is None else max(1, min(CHUNK, int(rate / 20)))
        todo = length if cut is None else cut
        began = time.monotonic()
        sent = 0
        with target.open("rb") as f:
            f.seek(start)
            while todo > 0 and not self.server.data.stopping.is_set():
                piece = f.read(min(chunk, todo))
                if not piece:
                    break
                entry.bytes_sent += len(piece)
                try:
                    self.wfile.write(piece)
                except OSError:
                    entry.bytes_sent -= len(piece)
                    self.close_connection = True
                    return
                todo -= len(piece)
                sent += len(piece)
                if rate is not None:
                    self.server.data.stopping.wait(max(0.0, began + sent / rate
                                                       - time.monotonic()))
        if cut is not None and cut < length:
            self._hang_up()

    def _head(self, entry: Request, status: int, headers: dict[str, str]) -> None:
        """Log the request, then send status line and headers."""
        entry.status = status
        self.server.data.record(entry)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _simple(self, entry: Request, status: int, body: str | bytes, content_type: str,
                extra: dict[str, str] | None = None) -> None:
        """A small, complete response (errors, HTML pages)."""
        raw = body.encode() if isinstance(body, str) else body
        self._head(entry, status, {"Content-Type": content_type,
                                   "Content-Length": str(len(raw)), **(extra or {})})
        if self.command != "HEAD":
            entry.bytes_sent = len(raw)
            with contextlib.suppress(OSError):
                self.wfile.write(raw)

    def _hang_up(self) -> None:
        """Close the connection abruptly, as a dying server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _content_type(path: Path) -> str:
    if path.suffix == ".zip":
        return "application/zip"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _not_modified(headers: Headers, etag: str, mtime: int) -> bool:
    """RFC 9110: If-None-Match (weak comparison) wins; else If-Modified-Since."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
    ims = headers.get("If-Modified-Since")
    if ims is None:
        return False
    try:
        return mtime <= parsedate_to_datetime(ims).timestamp()
    except (TypeError, ValueError):
        return False


def _if_range_ok(value: str, etag: str, st: Any) -> bool:
    """If-Range holds only for the same strong ETag, or exactly the Last-Modified date."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    try:
        return int(parsedate_to_datetime(value).timestamp()) == int(st.st_mtime)
    except (TypeError, ValueError):
        return False


def _parse_range(spec: str, size: int) -> tuple[int, int] | str | None:
    """``(start, stop)`` of a single ``bytes=`` range; "unsatisfiable"; or None to ignore.

    Multiple ranges and malformed headers are ignored (a full 200), as RFC 9110 allows.
    """
    unit, _, ranges = spec.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first, dash, last = ranges.strip().partition("-")
    if not dash or not (first.isdigit() or (first == "" and last.isdigit())):
        return None
    if last and not last.isdigit():
        return None
    if first == "":  # suffix: the last N bytes
        n = int(last)
        return "unsatisfiable" if n == 0 or size == 0 else (max(0, size - n), size)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1) + 1
