"""The registry of datasets geoload knows how to load.

>>> from service import catalog
>>> catalog.get("gadm").layers[2].table
'gadm.adm_2'
"""

from __future__ import annotations

import difflib

from service.catalog.gadm import GADM
from service.catalog.model import Dataset, Field, Layer, Source
from service.catalog.timezone import TIMEZONES
from service.errors import UnknownDataset

DATASETS: dict[str, Dataset] = {d.name: d for d in (GADM, *TIMEZONES)}

__all__ = ["DATASETS", "Dataset", "Field", "Layer", "Source", "get", "names", "refreshed",
           "resolve"]


def names() -> list[str]:
    return sorted(DATASETS)


def refreshed(loaded: set[str]) -> list[str]:
    """What the scheduled refresh checks: the datasets always kept current, and every other
    one that was ever ``loaded`` (a time zone variant someone asked for)."""
    return [name for name in names() if DATASETS[name].always_refreshed or name in loaded]


def get(name: str) -> Dataset:
    """The dataset called ``name``, or an error that suggests the closest name."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), names(), n=1, cutoff=0.4)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UnknownDataset(f"unknown dataset {name!r}",
                         hint=f"{hint}known datasets: {', '.join(names())}")


def resolve(requested: list[str]) -> list[Dataset]:
    """Look up every name before anything is enqueued, keeping order, dropping repeats."""
    return [get(name) for name in dict.fromkeys(requested)]
