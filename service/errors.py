"""Errors that say which dataset, which file, what is wrong and what to do.

Two families decide what the worker does next:

* :class:`PermanentError`: retrying can't help (a corrupt archive, a missing
  field, a 404). Actors list it in ``throws`` so Dramatiq fails the message at
  once instead of retrying it 20 times.
* :class:`TransientError`: the world may heal (a 503, a dropped connection).
  Dramatiq retries it with backoff.

Every message is built by :meth:`GeoloadError.__str__` so that a CLI, a log
line, Redis results and ``geoload.loads.error`` all read the same.
"""

from __future__ import annotations


class GeoloadError(Exception):
    """An expected failure, explained for a person."""

    kind = "error"

    def __init__(
        self,
        problem: str,
        *,
        dataset: str | None = None,
        file: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.dataset = dataset
        self.file = file
        self.hint = hint

    def where(self, *, dataset: str | None = None, file: str | None = None) -> "GeoloadError":
        """Fill in context that a lower layer did not know; returns self for ``raise``."""
        self.dataset = self.dataset or dataset
        self.file = self.file or file
        return self

    def __str__(self) -> str:
        head = " ".join(p for p in (
            f"[{self.dataset}]" if self.dataset else "",
            f"{self.file}:" if self.file else "",
        ) if p)
        text = f"{head} {self.problem}" if head else self.problem
        return f"{text}. What to do: {self.hint}" if self.hint else text


class PermanentError(GeoloadError):
    """Retrying can't fix this; the message fails at once."""

    kind = "permanent"


class TransientError(GeoloadError):
    """Something outside may recover; the message is retried with backoff."""

    kind = "transient"


class ConfigError(PermanentError):
    """A setting or a catalog entry is wrong."""


class UnknownDataset(ConfigError):
    """A name that is not in the catalog."""


class BadMessage(PermanentError):
    """A message whose arguments don't name a known dataset, layer or chunk."""


class BadSource(PermanentError):
    """Upstream published something we can't load as it is (bad archive, schema, data)."""


class CorruptArchive(BadSource):
    """An archive that fails to unpack (bad headers, a broken deflate stream, a CRC or size
    mismatch): the cached copy is worth nothing and is fetched anew."""


class PublishBlocked(PermanentError):
    """Objects in the database depend on a live table in a way a swap can't carry over."""


class UnknownRun(ConfigError):
    """No run has this id."""


class NothingToRetry(PermanentError):
    """The run has no failed or cancelled dataset."""


class Cancelled(PermanentError):
    """The load's run was cancelled while a step worked on it: the step stops, unretried."""


class UpstreamUnavailable(TransientError):
    """The upstream server failed in a way that may pass (5xx, timeout, cut connection)."""


class ServiceUnavailable(TransientError):
    """PostGIS, Redis or RabbitMQ can't be reached."""

    def __init__(self, service: str, url: str, detail: str) -> None:
        super().__init__(
            f"{service} can't be reached at {url} ({detail})",
            hint=f"start {service} or fix the URL setting (see README, Settings)",
        )
        self.service = service
        self.url = url


class CacheError(TransientError):
    """The local cache can't be written (disk full, permissions)."""
