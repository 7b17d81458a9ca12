"""The dashboard as a Starlette application: its routes, and the rules every request
passes on the way in, outermost first:

1. :class:`~service.dashboard.headers.SecurityHeaders` on every response;
2. :class:`~service.dashboard.errors.CatchAll`: a 500 without secrets;
3. :class:`~service.dashboard.auth.Guard`: Host (421), then the token (401), from headers;
4. :class:`~service.dashboard.limits.BodyLimit`: body length checked (400, 413), bytes counted;
5. :class:`~service.dashboard.csrf.CsrfCookie`: the browser's CSRF nonce;

then Starlette's routing, whose errors :mod:`service.dashboard.errors` words.
Each page has one data function in :mod:`service.dashboard.api`; its JSON is
served under ``/api/...`` and its HTML at the page's path. Actions are POSTs
under ``/api/...``: scripts get JSON, HTML forms get a redirect to the result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service.dashboard import api, endpoints
from service.dashboard.auth import Guard
from service.dashboard.context import Context
from service.dashboard.csrf import CsrfCookie
from service.dashboard.errors import HANDLERS, CatchAll
from service.dashboard.headers import SecurityHeaders
from service.dashboard.limits import BodyLimit
from service.settings import Settings

#: Static files may be cached a little; pages never are.
STATIC_CACHE = "max-age=300"

ACTIONS = (
    ("/api/runs", api.start_run),
    ("/api/runs/{run_id}/retry", api.retry_run),
    ("/api/runs/{run_id}/cancel", api.cancel_run),
    ("/api/runs/{run_id}/datasets/{dataset}/retry", api.retry_dataset),
    ("/api/dead-letters/{message_id}/requeue", api.requeue),
    ("/api/dead-letters/{message_id}/discard", api.discard),
)


class Static(StaticFiles):
    """The package's ``static/`` directory."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = STATIC_CACHE
        return response


def routes() -> list[BaseRoute]:
    return [
        Route("/", endpoints.root),
        Route("/healthz", endpoints.healthz),
        Route("/metrics", endpoints.prometheus),
        Route("/api/csrf", endpoints.csrf_token),
        Route("/api/lookup", endpoints.lookup),
        *[Route(page.path, endpoints.html_page(page)) for page in endpoints.PAGES],
        *[Route("/api" + page.path, endpoints.json_page(page)) for page in endpoints.PAGES],
        *[Route(path, endpoints.action(act), methods=["POST"]) for path, act in ACTIONS],
        Route("/datasets/{dataset}/{layer}/preview.svg", endpoints.preview),
        Mount("/static", Static(packages=[("service.dashboard", "static")]), name="static"),
    ]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Nothing to start (connections open per request); the broker is closed at the end."""
    yield
    app.state.ctx.close()


def create_app(settings: Settings) -> Starlette:
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityHeaders), Middleware(CatchAll),
                    Middleware(Guard, settings=settings), Middleware(BodyLimit),
                    Middleware(CsrfCookie)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.ctx = Context(settings)
    return app
