"""Errors as pages and JSON: what went wrong and what to do, without secrets.

A handler raises :class:`HTTPError`; Starlette's own 404 and 405 are reworded
the same way; an unreachable service is a 503; anything else is a 500 whose log
line is scrubbed like every body.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from service.dashboard import render
from service.dashboard.asgi import HTTPMiddleware, on_start
from service.errors import ServiceUnavailable

log = logging.getLogger("service.dashboard")


class HTTPError(HTTPException):
    """An answer other than success, with a message for a person and a hint."""

    def __init__(self, status: int, message: str, *, hint: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.hint = hint


async def refuse(exc: HTTPError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with ``exc`` from a middleware, outside the handlers that would catch it."""
    response = render.error(Request(scope), exc.status_code, exc.detail, exc.hint, exc.headers)
    await response(scope, receive, send)


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (HEAD goes without saying)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods - {"HEAD"}))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message, hint = exc.detail, getattr(exc, "hint", None)
    headers = dict(exc.headers or {})
    if not isinstance(exc, HTTPError) and exc.status_code == 404:
        message, hint = f"nothing at {request.url.path}", "start at /runs"
    elif not isinstance(exc, HTTPError) and exc.status_code == 405:
        message = f"{request.method} is not allowed here"
        headers["Allow"] = allowed_methods(request)
    return render.error(request, exc.status_code, message, hint, headers)


async def on_unavailable(request: Request, exc: Exception) -> Response:
    return render.error(request, 503, str(exc))


HANDLERS = {HTTPException: on_http_error, ServiceUnavailable: on_unavailable}


class CatchAll(HTTPMiddleware):
    """The last resort, inside the security headers: a 500 that names the error, and a
    scrubbed log line in place of the server's raw traceback."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started: list[bool] = []
        try:
            await self.app(scope, receive, on_start(send, lambda headers: started.append(True)))
        except Exception as exc:  # noqa: BLE001 - the page says what broke, minus secrets
            request = Request(scope)
            redactor = request.app.state.ctx.redactor
            log.error("%s %s failed: %s", scope["method"], scope["path"],
                      redactor.text(traceback.format_exc()))
            if not started:
                await render.error(request, 500, f"internal error ({type(exc).__name__}: {exc})",
                                   "see the dashboard's log")(scope, receive, send)
