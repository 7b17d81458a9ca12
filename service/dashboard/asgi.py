"""What the dashboard's pure ASGI middleware share: HTTP only, and editing a response's
headers as it starts.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: nothing here touches a
body, so a refusal is sent before a request body is read and a response is never
buffered.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HTTPMiddleware:
    """Runs :meth:`http` for HTTP requests; anything else (lifespan) passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def on_start(send: Send, edit: Callable[[MutableHeaders], None]) -> Send:
    """``send`` that lets ``edit`` change the response's headers before they go out."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            edit(MutableHeaders(scope=message))
        await send(message)

    return sending
