"""What every request handler shares: settings, connections out, and the CSRF secret.

Connections to PostGIS are opened per request (a poll every few seconds costs
little), so a PostGIS restart heals by itself. The Dramatiq broker is made
once, but each request closes the AMQP connection it opened: requests run on
Starlette's thread pool, and Dramatiq keeps one connection per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from service.dashboard.csrf import Csrf
from service.dashboard.preview import Previews
from service.dashboard.redact import Redactor
from service.ledger import schema
from service.live import Live
from service.postgres import connect
from service.settings import Settings


class Context:
    """Held in ``app.state.ctx``; closed when the server shuts down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.live = Live(settings)
        self.csrf = Csrf()
        self.redactor = Redactor(settings)
        self.previews = Previews()
        self._broker: Any = None
        self._lock = threading.Lock()
        self._schema_ready = False

    @contextmanager
    def db(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection; geoload's tables are created on first use."""
        with connect(self.settings, autocommit=True,
                     application_name="geoload-dashboard") as conn:
            if not self._schema_ready:
                schema.ensure(conn)
                self._schema_ready = True
            yield conn

    @contextmanager
    def broker(self) -> Iterator[Any]:
        """The producer's broker, with this thread's AMQP connection closed afterwards."""
        from service.pipeline.broker import make_broker

        with self._lock:
            if self._broker is None:
                self._broker = make_broker(self.settings)
            broker = self._broker
        try:
            yield broker
        finally:
            del broker.connection

    def close(self) -> None:
        """Close the broker's connections, if a request ever made it."""
        with self._lock:
            broker, self._broker = self._broker, None
        if broker is not None:
            broker.close()
