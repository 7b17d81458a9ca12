"""Routing and the rules every request passes: Host, authentication, POST-only changes
with CSRF, errors without secrets.

Each page has one data function in :mod:`service.dashboard.api`; its JSON is
served under ``/api/...`` and its HTML at the page's path. Actions are POSTs
under ``/api/...``: scripts get JSON, HTML forms get a redirect to the result.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import unquote

from service.dashboard import api, auth, metrics, pages
from service.dashboard.context import Context
from service.dashboard.csrf import COOKIE, FIELD, HEADER, cookie_header, same_origin
from service.dashboard.markup import layout
from service.dashboard.web import HTTPError, Request, Response
from service.errors import ServiceUnavailable
from service.settings import Settings

log = logging.getLogger("service.dashboard")
JSON = "application/json"
HTML = "text/html; charset=utf-8"
#: Pages run no inline script; bars set their width with a style attribute.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
     "style-src 'self'; style-src-attr 'unsafe-inline'; script-src 'self'; "
     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
STATIC = {"dashboard.css": "text/css; charset=utf-8",
          "dashboard.js": "text/javascript; charset=utf-8"}

Page = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    kind: str  # page | json | action | raw
    target: Callable[..., Any]
    render: Callable[[dict[str, Any], str], str] | None = None
    title: str = ""


def _r(method: str, path: str, kind: str, target: Callable[..., Any],
       render: Callable[[dict[str, Any], str], str] | None = None, title: str = "") -> Route:
    """``{name}`` in ``path`` matches one path segment and is passed by name."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(f"^{regex}$"), kind, target, render, title)


PAGES: list[tuple[str, str, Page, Callable[[dict[str, Any], str], str], str]] = [
    ("/runs", "/api/runs", api.runs, pages.runs, "Runs"),
    ("/runs/{run_id}", "/api/runs/{run_id}", api.run, pages.run, "Run"),
    ("/datasets", "/api/datasets", api.datasets, pages.datasets, "Datasets"),
    ("/failures", "/api/failures", api.failures, pages.failures, "Failures"),
    ("/queues", "/api/queues", api.queues_and_workers, pages.queues, "Queues & workers"),
]
ROUTES: list[Route] = [
    *[_r("GET", page, "page", data, render, title) for page, _, data, render, title in PAGES],
    *[_r("GET", path, "json", data) for _, path, data, _, _ in PAGES],
    _r("POST", "/api/runs", "action", api.start_run),
    _r("POST", "/api/runs/{run_id}/retry", "action", api.retry_run),
    _r("POST", "/api/runs/{run_id}/datasets/{dataset}/retry", "action", api.retry_dataset),
    _r("POST", "/api/dead-letters/{message_id}/requeue", "action", api.requeue),
    _r("POST", "/api/dead-letters/{message_id}/discard", "action", api.discard),
]


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def to_json(data: Any) -> bytes:
    return (json.dumps(data, default=_json_default, indent=1) + "\n").encode()


class App:
    """The dashboard as a function of one request."""

    def __init__(self, settings: Settings) -> None:
        self.ctx = Context(settings)
        self.settings = settings

    def __call__(self, request: Request) -> Response:
        cookie = None
        try:
            response, cookie = self._guarded(request)
        except HTTPError as exc:
            response = self._error(request, exc.status, exc.message, exc.hint)
            response.headers += list(exc.headers.items())
        except ServiceUnavailable as exc:
            response = self._error(request, 503, str(exc), None)
        except Exception as exc:  # noqa: BLE001 - the page says what broke, minus secrets
            log.error("%s %s failed: %s", request.method, request.path,
                      self.ctx.redactor.text(f"{type(exc).__name__}: {exc}"))
            response = self._error(request, 500, f"internal error ({type(exc).__name__}: {exc})",
                                   "see the dashboard's log")
        response.body = self.ctx.redactor.body(response.body)
        response.headers += SECURITY_HEADERS
        if cookie:
            response.headers.append(("Set-Cookie", cookie_header(cookie)))
        return response

    # --- the rules ------------------------------------------------------------------------

    def _guarded(self, request: Request) -> tuple[Response, str | None]:
        if request.path == "/healthz":
            return Response(200, b'{"ok": true}\n', JSON), None
        if not auth.host_allowed(self.settings, request.header("Host")):
            raise HTTPError(421, "this dashboard answers only to a loopback host name",
                            hint=f"open http://127.0.0.1:{self.settings.dashboard_port}/")
        if not auth.authorized(self.settings.dashboard_token, request.header("Authorization")):
            raise HTTPError(401, "authentication required",
                            hint="send Authorization: Bearer <GEOLOAD_DASHBOARD_TOKEN>, or basic "
                                 "auth with the token as password",
                            headers={"WWW-Authenticate": auth.REALM})
        nonce = request.cookies.get(COOKIE)
        fresh = None if nonce else self.ctx.csrf.new_nonce()
        return self._route(request, nonce or fresh or ""), fresh

    def _check_csrf(self, request: Request, nonce: str) -> None:
        if not same_origin(request.header("Host"), request.header("Origin"),
                           request.header("Referer"), request.header("Sec-Fetch-Site")):
            raise HTTPError(403, "cross-site request refused")
        token = request.header(HEADER) or (request.fields().get(FIELD) if request.is_form
                                           else None)
        if not self.ctx.csrf.valid(request.cookies.get(COOKIE), token):
            raise HTTPError(403, "CSRF token missing or invalid",
                            hint=f"reload the page; scripts: GET /api/csrf, then send the "
                                 f"{COOKIE} cookie and the {HEADER} header with each POST")

    # --- dispatch -------------------------------------------------------------------------

    def _route(self, request: Request, nonce: str) -> Response:
        token = self.ctx.csrf.token(nonce)
        path = request.path.rstrip("/") or "/"
        fixed = self._fixed(request, path, token)
        if fixed is not None:
            return fixed
        allowed = []
        for route in ROUTES:
            match = route.pattern.match(path)
            if not match:
                continue
            allowed.append(route.method)
            if route.method == request.method or (route.method == "GET"
                                                  and request.method == "HEAD"):
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                return self._run(route, request, params, token, nonce)
        if allowed:
            raise HTTPError(405, f"{request.method} is not allowed here",
                            headers={"Allow": ", ".join(sorted(set(allowed)))})
        raise HTTPError(404, f"nothing at {path}", hint="start at /runs")

    def _fixed(self, request: Request, path: str, token: str) -> Response | None:
        """Routes that are not pages: redirects, static files, metrics, previews, CSRF."""
        if request.method not in ("GET", "HEAD"):
            return None
        if path == "/":
            return Response(303, b"", HTML, [("Location", "/runs")])
        if path == "/metrics":
            return Response(200, metrics.render(self.ctx), metrics.CONTENT_TYPE)
        if path == "/api/csrf":
            return Response(200, to_json({"token": token, "cookie": COOKIE, "header": HEADER}),
                            JSON)
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in STATIC:
                raise HTTPError(404, f"no static file {name!r}")
            body = resources.files("service.dashboard").joinpath("static", name).read_bytes()
            return Response(200, body, STATIC[name], [("Cache-Control", "max-age=300")])
        found = re.fullmatch(r"/datasets/([^/]+)/([^/]+)/preview\.svg", path)
        if found:
            svg = api.preview(self.ctx, request, *map(unquote, found.groups()))
            return Response(200, svg, "image/svg+xml")
        return None

    def _run(self, route: Route, request: Request, params: dict[str, str], token: str,
             nonce: str) -> Response:
        if route.kind == "action":
            self._check_csrf(request, nonce)
            data = route.target(self.ctx, request, **params)
            if request.is_form:
                return Response(303, b"", HTML, [("Location", data.get("url", "/runs"))])
            return Response(202 if "run_id" in data else 200, to_json(data), JSON)
        data = route.target(self.ctx, request, **params)
        if route.kind == "json":
            return Response(200, to_json(data), JSON)
        assert route.render is not None
        body = route.render(data, token)
        if request.arg("fragment"):
            return Response(200, body.encode(), HTML)
        api_path = "/api" + request.path.rstrip("/")
        return Response(200, layout(route.title, "/" + path_head(request.path), body, token,
                                    api_path).encode(), HTML)

    def _error(self, request: Request, status: int, message: str, hint: str | None) -> Response:
        if not _wants_html(request):
            return Response(status, to_json({"error": message, "hint": hint, "status": status}),
                            JSON)
        body = pages.error(status, message, hint)
        if request.arg("fragment"):
            return Response(status, body.encode(), HTML)
        return Response(status, layout(f"{status}", "", body, "", "/api/runs").encode(), HTML)


def path_head(path: str) -> str:
    """``/runs/abc`` → ``runs``: which navigation entry is active."""
    return path.strip("/").split("/", 1)[0]


def _wants_html(request: Request) -> bool:
    """Browsers get an HTML error page (forms too); scripts and API paths get JSON."""
    if request.is_form:
        return True
    api_path = request.path.startswith("/api/") or request.path == "/metrics"
    return not api_path and "text/html" in (request.header("Accept") or "")
