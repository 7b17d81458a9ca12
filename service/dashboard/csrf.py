"""CSRF protection for every POST: a same-origin check and an HMAC-bound double submit.

The browser keeps a random nonce in a SameSite=Strict cookie; pages embed
``HMAC(secret, nonce)``, and a POST must send both. Another site can neither
read the token nor set the cookie. The secret lives only in this process, so a
dashboard restart asks the page to be reloaded, nothing more. :class:`CsrfCookie`
gives a browser its nonce on its first response; the POST handlers check both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from service.dashboard.asgi import HTTPMiddleware, on_start

COOKIE = "geoload_csrf"
HEADER = "X-CSRF-Token"
FIELD = "csrf"


class Csrf:
    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.token(nonce), token)


def cookie_header(nonce: str) -> str:
    return f"{COOKIE}={nonce}; Path=/; SameSite=Strict; HttpOnly"


def same_origin(host: str | None, origin: str | None, referer: str | None,
                fetch_site: str | None) -> bool:
    """The request came from one of our own pages (or from a script that sent no origin)."""
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return False
    source = origin if origin and origin != "null" else referer
    if origin == "null":
        return False
    if not source:
        return True  # curl and scripts send neither; the token still has to match
    return bool(host) and urlsplit(source).netloc.lower() == (host or "").lower()


class CsrfCookie(HTTPMiddleware):
    """The browser's nonce in ``request.state.csrf_nonce``, and a ``Set-Cookie`` with a
    fresh one when it had none."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        nonce = HTTPConnection(scope).cookies.get(COOKIE)
        if not nonce:
            nonce = fresh = Csrf.new_nonce()
            send = on_start(send, lambda headers: headers.append("Set-Cookie",
                                                                 cookie_header(fresh)))
        scope.setdefault("state", {})["csrf_nonce"] = nonce
        await self.app(scope, receive, send)
