"""URL helpers: mask passwords before a URL is shown, and route upstream through a mirror."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from service.errors import ConfigError


def mask(url: str) -> str:
    """``scheme://user:***@host/path``: safe to print, log and store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


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
