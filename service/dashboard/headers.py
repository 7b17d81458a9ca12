"""The security headers every response carries, refusals and errors included."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Receive, Scope, Send

from service.dashboard.asgi import HTTPMiddleware, on_start

#: Pages run no inline script; bars set their width with a style attribute. A response
#: that sets one of these itself (static files: ``Cache-Control``) keeps its own.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; style-src-attr 'unsafe-inline'; "
                               "script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def add_security_headers(headers: MutableHeaders) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


class SecurityHeaders(HTTPMiddleware):
    """Outermost of ours, so that nothing leaves without them."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, on_start(send, add_security_headers))
