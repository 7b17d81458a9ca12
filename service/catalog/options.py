"""What one load loads and where: fixed once, when the run is enqueued.

A worker's environment is not the producer's. Before these options existed, each
worker filled the timezone release from its own ``GEOLOAD_TIMEZONE_RELEASE``, so a
producer run with another value still loaded the release the workers had started
with. Now the producer resolves every choice (:func:`resolve`), the ledger records it
with the load (``geoload.loads.options``), and every step on every host rebuilds the
dataset it works on from the record (:meth:`LoadOptions.apply`), never from its own
settings.

>>> opts = resolve(catalog.get("gadm"), settings, levels=(0, 1, 2), schema="mine")
>>> [layer.table for layer in opts.apply(catalog.get("gadm")).layers]
['mine.adm_0', 'mine.adm_1', 'mine.adm_2']
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from service.catalog.model import Dataset
from service.errors import ConfigError
from service.load.names import MAX_BYTES
from service.settings import Settings

#: A schema name geoload creates: plain lower-case, so that users need no quoting.
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Schemas geoload owns; publishing user tables there would mix them with its bookkeeping.
_RESERVED = ("geoload", "geoload_staging", "geoload_archive", "public", "pg_catalog",
             "information_schema")


@dataclass(frozen=True)
class LoadOptions:
    """A load's resolved choices; the defaults mean "as the catalog says".

    ``url`` is upstream's URL (before any per-host mirror), with the release filled in.
    ``levels`` keeps only those layers (empty: all). ``schema`` replaces the catalog's
    schema of every table. ``source`` is a user's file or URL loaded instead of upstream's.
    """

    release: str | None = None
    url: str | None = None
    countries: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    schema: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LoadOptions | None:
        if data is None:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("countries", "levels"):
            known[key] = tuple(known.get(key) or ())
        return cls(**known)

    def apply(self, dataset: Dataset) -> Dataset:
        """The catalog's ``dataset`` as this load loads it: its URL fixed, its layers
        narrowed to ``levels``, its tables moved to ``schema``.

        With ``countries``, the source is the per-country one (its URL still holds
        ``{part}``: see :meth:`part`), and each table's key is the level's ``GID_k``, since
        every country's file numbers its features from 1.
        """
        source = dataset.source
        if self.source:
            source = replace(source, url=self.source.replace("{", "{{").replace("}", "}}"),
                             release_setting=None, sha256=None, user=True,
                             archive="zip" if self.source.lower().endswith(".zip") else None)
        elif self.countries and dataset.parts is not None:
            source = dataset.parts
        elif self.url is not None:
            source = replace(source, url=self.url.replace("{", "{{").replace("}", "}}"),
                             release_setting=None)
        layers = tuple(layer for layer in dataset.layers
                       if not self.levels or layer.level in self.levels)
        if self.schema:
            layers = tuple(replace(layer, table=f"{self.schema}.{layer.table_name}")
                           for layer in layers)
        if self.countries:
            layers = tuple(replace(layer, key=layer.feature_key.lower())
                           if layer.feature_key else layer for layer in layers)
        return replace(dataset, source=source, layers=layers)

    def every_level(self, dataset: Dataset) -> Dataset:
        """``dataset`` as :meth:`apply` gives it, but with every layer, chosen or not: the
        ones not chosen leave with the version they belong to when this load publishes."""
        return replace(self, levels=()).apply(dataset)

    def every_table(self, dataset: Dataset) -> list[str]:
        """Every table ``dataset`` can publish in this load's schema, chosen or not."""
        return [layer.table for layer in self.every_level(dataset).layers]

    def part(self, applied: Dataset, code: str) -> Dataset:
        """The dataset ``apply`` gave, with the one file of country ``code`` as its source:
        what :func:`service.fetch.fetch` takes to bring that file onto a host. Named
        ``gadm/NPL``, so that errors name the country and each file has a cache folder (and
        host lock) of its own: two countries download at once on one host. Its staging
        tables keep the dataset's names (``prefix``): every country loads into them."""
        return replace(applied, name=f"{applied.name}/{code}", prefix=applied.stem,
                       source=replace(applied.source,
                                      url=applied.source.url.replace("{part}", code)))

    def describe(self) -> str:
        """One line for ``status`` and the dashboard: what was chosen beyond the catalog's
        defaults (the release is shown on its own)."""
        parts = []
        if self.countries:
            parts.append(f"countries {','.join(self.countries)}")
        if self.levels:
            parts.append(f"levels {','.join(map(str, self.levels))}")
        if self.schema:
            parts.append(f"schema {self.schema}")
        if self.source:
            parts.append(f"source {self.source}")
        return " · ".join(parts)


def resolve(dataset: Dataset, settings: Settings, *, levels: tuple[int, ...] = (),
            schema: str | None = None, source: str | None = None,
            countries: tuple[str, ...] = (), release: str | None = None) -> LoadOptions:
    """Fix every choice of a load now, in the producer, from its settings and arguments.

    Raises :class:`~service.errors.ConfigError` (a usage error) for levels the dataset
    does not have or a schema geoload can't publish into.
    """
    release = release or dataset.release(settings)
    url = dataset.source.url.format(release=release or "")
    if countries:
        countries = _check_countries(dataset, countries)
        url = dataset.parts.url if dataset.parts else url
    if source:
        if countries:
            raise ConfigError("--source and --countries exclude each other", dataset=dataset.name,
                              hint="load your own file, or upstream's files by country")
        source = _absolute(source)
        url = source
    return LoadOptions(release=release, url=url, countries=tuple(countries),
                       levels=_check_levels(dataset, levels),
                       schema=_check_schema(dataset, schema), source=source)


def parse_levels(text: str) -> tuple[int, ...]:
    """``0-2`` or ``0,1,3`` → (0, 1, 2) or (0, 1, 3)."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            out.update(range(int(first), int(last if dash else first) + 1))
    except ValueError as exc:
        raise ConfigError(f"--levels {text!r} is not a list of levels",
                          hint="write levels as 0-2 or 0,1,3") from exc
    return tuple(sorted(out))


def _absolute(source: str) -> str:
    """A local path made absolute where it was given: a worker runs in another directory."""
    if "://" in source:
        return source
    from pathlib import Path

    return str(Path(source).expanduser().absolute())


def _check_countries(dataset: Dataset, countries: tuple[str, ...]) -> tuple[str, ...]:
    if dataset.parts is None:
        raise ConfigError(f"dataset {dataset.name!r} is not published by country",
                          dataset=dataset.name, hint="drop --countries for this dataset")
    from service.catalog.countries import check

    return check(list(countries), dataset.part_codes)


def _check_levels(dataset: Dataset, levels: tuple[int, ...]) -> tuple[int, ...]:
    if not levels:
        return ()
    have = sorted(layer.level for layer in dataset.layers if layer.level is not None)
    if not have:
        raise ConfigError(f"dataset {dataset.name!r} has no levels to choose from",
                          dataset=dataset.name, hint="drop --levels for this dataset")
    unknown = sorted(set(levels) - set(have))
    if unknown:
        raise ConfigError(f"dataset {dataset.name!r} has no level {unknown[0]}",
                          dataset=dataset.name,
                          hint=f"its levels are {have[0]}-{have[-1]}")
    return tuple(sorted(set(levels)))


def _check_schema(dataset: Dataset, schema: str | None) -> str | None:
    """None for the catalog's own schema, so that ``--schema gadm`` is the default load."""
    if schema is None or (dataset.schemas == (schema,)):
        return None
    if not _SCHEMA.match(schema) or len(schema.encode()) > MAX_BYTES \
            or schema in _RESERVED or schema.startswith("pg_"):
        raise ConfigError(f"--schema {schema!r} can't hold {dataset.name}'s tables",
                          dataset=dataset.name,
                          hint="use lower-case letters, digits and _ (at most 63 bytes), not "
                               f"one of {', '.join(_RESERVED)}")
    return schema
