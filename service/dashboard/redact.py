"""Scrub passwords from everything the dashboard sends or logs.

Libraries put URLs and connection strings into their error messages; rather
than trusting each one, every response body and log line passes through here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from service.settings import Settings

#: ``scheme://user:password@`` anywhere in a text.
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@/\s]+@")
#: Shorter secrets are not replaced verbatim: they would collide with ordinary words.
MIN_SECRET = 5


def secrets_of(settings: Settings) -> list[str]:
    """Every password the settings hold, longest first."""
    found = {settings.dashboard_token or ""}
    for url in (settings.database_url, settings.broker_url, settings.redis_url,
                settings.rabbitmq_api):
        try:
            found.add(urlsplit(url).password or "")
        except ValueError:
            continue
    return sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)


class Redactor:
    """Masks URL passwords, then any known secret that still appears verbatim."""

    def __init__(self, settings: Settings) -> None:
        self.secrets = secrets_of(settings)

    def text(self, text: str) -> str:
        text = _USERINFO.sub(r"\g<head>:***@", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def body(self, body: bytes) -> bytes:
        return self.text(body.decode("utf-8", "surrogateescape")).encode("utf-8",
                                                                          "surrogateescape")
