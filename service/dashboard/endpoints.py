"""What each URL does: a page and its JSON from one data function, the POST actions, and
the few fixed routes (root, health, metrics, CSRF token, map previews).

Page and JSON endpoints are plain functions, which Starlette runs on its thread pool
(they wait on PostGIS, Redis and RabbitMQ). Actions are async only to read their body;
the action itself runs on the thread pool too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from service.dashboard import api, metrics, render
from service.dashboard.context import Context
from service.dashboard.csrf import COOKIE, FIELD, HEADER, same_origin
from service.dashboard.errors import HTTPError

Endpoint = Callable[[Request], Any]


@dataclass(frozen=True)
class Page:
    """A page at ``path``, its JSON at ``/api`` + ``path``, both from ``data``."""

    path: str
    data: Callable[..., dict[str, Any]]
    template: str
    title: str


PAGES = (
    Page("/runs", api.runs, "runs.html", "Runs"),
    Page("/runs/{run_id}", api.run, "run.html", "Run"),
    Page("/datasets", api.datasets, "datasets.html", "Datasets"),
    Page("/failures", api.failures, "failures.html", "Failures"),
    Page("/queues", api.queues_and_workers, "queues.html", "Queues & workers"),
)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _data(page: Page, request: Request) -> dict[str, Any]:
    return page.data(context(request), request.query_params, **request.path_params)


def html_page(page: Page) -> Endpoint:
    def endpoint(request: Request) -> Response:
        return render.page(request, page.template, _data(page, request), title=page.title)
    return endpoint


def json_page(page: Page) -> Endpoint:
    def endpoint(request: Request) -> Response:
        return render.json_response(request, _data(page, request))
    return endpoint


# --- actions --------------------------------------------------------------------------------

def action(act: Callable[..., dict[str, Any]]) -> Endpoint:
    """A POST: same origin, then its body (bounded by :mod:`limits`), then the CSRF token.

    Scripts get JSON (202 when a run started); HTML forms get a 303 to the result.
    """
    async def endpoint(request: Request) -> Response:
        _check_origin(request)
        fields = await read_fields(request)
        _check_token(request, fields)
        data = await run_in_threadpool(act, context(request), fields, **request.path_params)
        if render.is_form(request):
            return RedirectResponse(data.get("url", "/runs"), 303)
        return render.json_response(request, data, 202 if "run_id" in data else 200)
    return endpoint


async def read_fields(request: Request) -> dict[str, Any]:
    """The body as a dict: a form's last value per field, or a JSON object."""
    if render.is_form(request):
        return dict((await request.form()).items())
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HTTPError(400, f"the request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise HTTPError(400, "the request body must be a JSON object")
    return data


def _check_origin(request: Request) -> None:
    headers = request.headers
    if not same_origin(headers.get("host"), headers.get("origin"), headers.get("referer"),
                       headers.get("sec-fetch-site")):
        raise HTTPError(403, "cross-site request refused")


def _check_token(request: Request, fields: dict[str, Any]) -> None:
    token = request.headers.get(HEADER) or (fields.get(FIELD) if render.is_form(request)
                                            else None)
    if not context(request).csrf.valid(request.cookies.get(COOKIE), token):
        raise HTTPError(403, "CSRF token missing or invalid",
                        hint=f"reload the page; scripts: GET /api/csrf, then send the "
                             f"{COOKIE} cookie and the {HEADER} header with each POST")


# --- fixed routes ---------------------------------------------------------------------------

def root(request: Request) -> Response:
    return RedirectResponse("/runs", 303)


def healthz(request: Request) -> Response:
    return render.json_response(request, {"ok": True})


def prometheus(request: Request) -> Response:
    return render.respond(request, metrics.render(context(request)), metrics.CONTENT_TYPE)


def csrf_token(request: Request) -> Response:
    return render.json_response(request, {"token": render.csrf_token(request),
                                          "cookie": COOKIE, "header": HEADER})


def lookup(request: Request) -> Response:
    return render.json_response(request, api.lookup_point(context(request),
                                                          request.query_params))


def preview(request: Request) -> Response:
    svg = api.preview(context(request), **request.path_params,
                      changes=request.query_params.get("changes") == "1")
    return render.respond(request, svg, "image/svg+xml")
