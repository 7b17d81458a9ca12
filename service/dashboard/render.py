"""Responses: pages from Jinja2 templates (autoescaped), JSON, and errors as either.

Every body built here passes through the context's redactor, so a library's error
message that carries a URL with its password can't reach a browser or a script.
The filters only format numbers; all markup lives in ``templates/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import jinja2
from starlette.requests import HTTPConnection
from starlette.responses import Response

from service.dashboard.csrf import FIELD

JSON = "application/json"
HTML = "text/html; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
NAV = (("/runs", "Runs"), ("/datasets", "Datasets"), ("/failures", "Failures"),
       ("/queues", "Queues & workers"))


# --- filters --------------------------------------------------------------------------------

def number(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def size(value: Any) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return f"{amount:,.1f} TiB"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    if float(seconds) < 10:
        return f"{float(seconds):.1f} s"
    hours, rest = divmod(int(round(float(seconds))), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def rate(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.0f} features/s"


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value):.0f} %"


def clamp(value: Any) -> float:
    """A percentage for a bar's width: unknown is 0, and never beyond 0–100."""
    return 0.0 if value is None else max(0.0, min(100.0, float(value)))


def _environment() -> jinja2.Environment:
    """Autoescaping everywhere; an unknown name is an error, and None prints as nothing."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("service.dashboard", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        finalize=lambda value: "" if value is None else value)
    env.filters.update(number=number, size=size, duration=duration, utc=utc, rate=rate,
                       percent=percent, clamp=clamp)
    env.tests["datetime"] = lambda value: isinstance(value, datetime)
    env.globals.update(nav=NAV, csrf_field=FIELD)
    return env


TEMPLATES = _environment()


# --- responses ------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def to_json(data: Any) -> bytes:
    return (json.dumps(data, default=_json_default, indent=1) + "\n").encode()


def respond(request: HTTPConnection, body: bytes, media_type: str, status: int = 200,
            headers: Mapping[str, str] | None = None) -> Response:
    """The one way out for a body the dashboard builds: scrubbed of secrets."""
    redactor = request.app.state.ctx.redactor
    return Response(redactor.body(body), status, headers, media_type)


def json_response(request: HTTPConnection, data: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    return respond(request, to_json(data), JSON, status, headers)


def csrf_token(request: HTTPConnection) -> str:
    """The token bound to this browser's cookie (empty before the cookie middleware ran)."""
    nonce = getattr(request.state, "csrf_nonce", None)
    return str(request.app.state.ctx.csrf.token(nonce)) if nonce else ""


def page(request: HTTPConnection, template: str, data: Mapping[str, Any], *, title: str,
         status: int = 200, headers: Mapping[str, str] | None = None, active: str | None = None,
         api: str | None = None) -> Response:
    """A whole page, or with ``?fragment=1`` only its ``<main>`` (what live updates swap in).

    ``active`` (the navigation entry) and ``api`` (its JSON twin) default to the page's path.
    """
    path = request.url.path.rstrip("/") or "/"
    html = TEMPLATES.get_template(template).render(
        title=title, csrf=csrf_token(request), fragment=bool(request.query_params.get("fragment")),
        active="/" + path.strip("/").split("/", 1)[0] if active is None else active,
        api="/api" + path if api is None else api, **data)
    return respond(request, html.encode(), HTML, status, headers)


def is_form(request: HTTPConnection) -> bool:
    return request.headers.get("content-type", "").startswith(FORM)


def wants_html(request: HTTPConnection) -> bool:
    """Browsers get an HTML error page (forms too); scripts and API paths get JSON."""
    if is_form(request):
        return True
    path = request.url.path
    api_path = path.startswith("/api/") or path == "/metrics"
    return not api_path and "text/html" in request.headers.get("accept", "")


def error(request: HTTPConnection, status: int, message: str, hint: str | None = None,
          headers: Mapping[str, str] | None = None) -> Response:
    if not wants_html(request):
        return json_response(request, {"error": message, "hint": hint, "status": status},
                             status, headers)
    return page(request, "error.html", {"status": status, "message": message, "hint": hint},
                title=str(status), status=status, headers=headers, active="", api="/api/runs")
