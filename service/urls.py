"""URL helpers: mask passwords before a URL is shown, and route upstream through a mirror."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from service.errors import ConfigError

#: Query parameters (``?password=…``, which libpq accepts) and libpq keywords that hold secrets.
_SECRET_NAMES = r"(?:ssl)?password|passwd|pwd|secret|token|api_?key"
_SECRET_PARAM = re.compile(rf"(^|&)({_SECRET_NAMES})=[^&]*", re.IGNORECASE)
_SECRET_KEYWORD = re.compile(rf"\b({_SECRET_NAMES})(\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)",
                             re.IGNORECASE)


def mask(url: str) -> str:
    """``scheme://user:***@host/path``: safe to print, log and store.

    Also hides ``?password=…`` in a URL's query and ``password=…`` in a libpq
    ``key=value`` connection string, the other two places a password can hide.
    """
    if "://" not in url:
        return _SECRET_KEYWORD.sub(r"\1\2***", url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    return urlunsplit(parts._replace(query=_SECRET_PARAM.sub(r"\1\2=***", parts.query)))


def mirrored(url: str, mirror: str | None) -> str:
    """Replace scheme and host of ``url`` by the mirror's, keeping the path.

    A mirror may carry a path prefix: ``http://10.0.0.5/geo`` turns
    ``https://geodata.ucdavis.edu/gadm/x.zip`` into ``http://10.0.0.5/geo/gadm/x.zip``.
    """
    if not mirror:
        return url
    target = urlsplit(mirror)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise ConfigError(f"GEOLOAD_MIRROR={mask(mirror)!r} is not an http(s) URL",
                          hint="set it like http://mirror.example:8000 or unset it")
    source = urlsplit(url)
    path = target.path.rstrip("/") + source.path
    return urlunsplit((target.scheme, target.netloc, path, source.query, ""))


def check_scheme(url: str, mirror: str | None) -> None:
    """Upstream is https only; plain http is allowed only for a configured mirror."""
    scheme = urlsplit(url).scheme
    if scheme == "https":
        return
    if scheme == "http" and mirror and urlsplit(mirror).scheme == "http":
        return
    raise ConfigError(f"refusing to download {mask(url)} over {scheme or 'no scheme'}",
                      hint="upstream URLs must be https; plain http only via GEOLOAD_MIRROR")
