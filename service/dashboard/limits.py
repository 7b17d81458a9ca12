"""Request bodies are small, and refused before a byte of them is read.

Every action takes a few fields. A body-carrying request must say how long its body
is (``Content-Length``, or ``Transfer-Encoding: chunked``); a missing or malformed
length is refused with 400 and a declared length over :data:`MAX_BODY` with 413,
from the headers alone. A chunked body is counted as the handler reads it and
refused once it passes the cap, so at most :data:`MAX_BODY` bytes are ever held.
Refusals close the connection: the server then reads nothing more of what the
client keeps sending. uvicorn's HTTP parser (h11) already answers 400 to a length
such as ``-1`` before the application sees the request; this is the rule for
everything it lets through.

Authentication (:class:`service.dashboard.auth.Guard`) runs before this, and
nothing before it reads a body.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.dashboard.asgi import HTTPMiddleware
from service.dashboard.errors import HTTPError, refuse

#: Larger request bodies are refused: every action takes a few small fields.
MAX_BODY = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Sent with every refusal of a body not read: don't drain it, hang up.
CLOSE = {"Connection": "close"}
_DIGITS = re.compile(r"[0-9]+")


def refusal(headers: Headers, cap: int) -> HTTPError | None:
    """Why a body-carrying request can't be served, judged from its headers alone."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None  # counted while it is read
    lengths = {value.strip() for value in headers.getlist("content-length")}
    if not lengths:
        return HTTPError(400, "the request has no Content-Length",
                         hint="send Content-Length (0 for no body) or a chunked body",
                         headers=CLOSE)
    if len(lengths) > 1 or not _DIGITS.fullmatch(next(iter(lengths))):
        return HTTPError(400, f"Content-Length {', '.join(sorted(lengths))!r} is not one "
                              "number of bytes", headers=CLOSE)
    if int(next(iter(lengths))) > cap:
        return too_large(cap)
    return None


def too_large(cap: int) -> HTTPError:
    return HTTPError(413, f"request body over {cap:,} bytes",
                     hint="actions take a few small fields; send only those", headers=CLOSE)


class BodyLimit(HTTPMiddleware):
    """The length checked up front, the bytes counted as they are read."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        super().__init__(app)
        self.max_body = max_body

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        refused = refusal(Headers(scope=scope), self.max_body)
        if refused is not None:
            await refuse(refused, scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        """``receive`` that raises 413 (to the handler reading) once the cap is passed."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise too_large(self.max_body)
            return message

        return counted
