"""Who may use the dashboard: loopback only, or anyone holding the token.

Bound to a loopback address, the dashboard is reachable only from this host;
anywhere else it refuses to start without a token. Requests on loopback must
name a loopback host, so a web page that rebinds its DNS to 127.0.0.1 can't
read or drive the dashboard.

:class:`Guard` applies both to every request but ``/healthz``, from the headers
alone: nothing has read the request's body when it refuses.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.dashboard.asgi import HTTPMiddleware
from service.dashboard.errors import HTTPError, refuse
from service.dashboard.limits import CLOSE
from service.errors import ConfigError
from service.settings import Settings

REALM = 'Basic realm="geoload dashboard", charset="UTF-8"'


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs; any other name counts as reachable."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse to serve beyond loopback without a token."""
    host = settings.dashboard_host
    if not is_loopback(host) and not settings.dashboard_token:
        raise ConfigError(
            f"refusing to serve the dashboard on {host}:{settings.dashboard_port} without a "
            "token: anyone who can reach it could start and discard work",
            hint="set GEOLOAD_DASHBOARD_TOKEN to a long random secret, or bind "
                 "GEOLOAD_DASHBOARD_HOST=127.0.0.1")


def host_allowed(settings: Settings, host_header: str | None) -> bool:
    """On loopback, the Host header must name loopback too (DNS rebinding)."""
    if not is_loopback(settings.dashboard_host):
        return True
    if not host_header:
        return False
    name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    return is_loopback(name)


def authorized(token: str | None, header: str | None) -> bool:
    """``Authorization: Bearer <token>`` or basic auth with the token as password."""
    if token is None:
        return True
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.partition(":")[2].encode(), token.encode())
    return False


#: Answers with no authentication: a liveness probe (``service.wait dashboard``, compose).
OPEN_PATHS = frozenset({"/healthz"})


class Guard(HTTPMiddleware):
    """421 for a foreign Host on loopback, 401 without the token."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(app)
        self.settings = settings

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = None if scope["path"] in OPEN_PATHS else self.refusal(Headers(scope=scope))
        if refused is None:
            await self.app(scope, receive, send)
        else:
            await refuse(refused, scope, receive, send)

    def refusal(self, headers: Headers) -> HTTPError | None:
        if not host_allowed(self.settings, headers.get("host")):
            return HTTPError(421, "this dashboard answers only to a loopback host name",
                             hint=f"open http://127.0.0.1:{self.settings.dashboard_port}/",
                             headers=CLOSE)
        if not authorized(self.settings.dashboard_token, headers.get("authorization")):
            return HTTPError(401, "authentication required",
                             hint="send Authorization: Bearer <GEOLOAD_DASHBOARD_TOKEN>, or "
                                  "basic auth with the token as password",
                             headers={"WWW-Authenticate": REALM, **CLOSE})
        return None
