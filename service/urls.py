"""Mask the secrets in a URL before it is shown, logged or stored.

(Routing upstream through a mirror is :mod:`service.fetch.mirror`.)
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

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
