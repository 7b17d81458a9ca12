"""Where a dataset's file is fetched from: upstream's URL, or a configured mirror's stand-in.

Upstream is https only; plain http is accepted only for a mirror configured so
(``GEOLOAD_MIRROR``), whose holder chose it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from service.catalog import Dataset
from service.errors import ConfigError
from service.settings import Settings
from service.urls import mask


def source_url(dataset: Dataset, settings: Settings) -> str:
    """The URL actually fetched: upstream's, or the mirror's stand-in for it; a user's own
    (``--source``) as given, over http or https, its holder's choice."""
    if dataset.source.user:
        url = dataset.url(settings)
        check_scheme(url, url)
        return url
    url = mirrored(dataset.url(settings), settings.mirror)
    check_scheme(url, settings.mirror)
    return url


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
