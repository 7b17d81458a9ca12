"""The PostgreSQL names geoload derives from catalog names: never cut short, never shared.

PostgreSQL silently truncates identifiers to 63 bytes. A staging table named
``<dataset>__<table>__l<load>`` and cut there loses its load id, so two loads
would share (and drop) one table. Names here keep their distinguishing tail
intact and, when the whole would not fit, replace the end of the head by a hash
of the full name. The catalog refuses names whose derived names would need it
(:func:`longest_derived`), so in practice every name reads as it was meant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: The schema a load's tables are built in, before they are published.
STAGING = "geoload_staging"
#: The schema earlier versions are kept in (``GEOLOAD_KEEP_VERSIONS``), tables and lookups.
ARCHIVE = "geoload_archive"
#: PostgreSQL's NAMEDATALEN - 1.
MAX_BYTES = 63
#: Load ids (bigserial) the catalog leaves room for: ten billion loads.
LOAD_ID_DIGITS = 10
_HASH_CHARS = 8


def bounded(head: str, tail: str = "") -> str:
    """``head + tail`` if it fits in :data:`MAX_BYTES`; else ``head`` cut at a character
    boundary, ``_``, a hash of the full name, then ``tail`` whole."""
    name = head + tail
    if len(name.encode()) <= MAX_BYTES:
        return name
    room = MAX_BYTES - len(tail.encode()) - _HASH_CHARS - 1
    assert room > 0, f"tail {tail!r} leaves no room"
    cut = head.encode()[:room].decode("utf-8", "ignore")
    return f"{cut}_{hashlib.sha256(name.encode()).hexdigest()[:_HASH_CHARS]}{tail}"


def staging_table(dataset: str, table: str, load_id: int) -> str:
    """``gadm__adm_2__l17``: one load's table, before it is published."""
    return bounded(f"{dataset}__{table}", f"__l{load_id}")


def retired_table(dataset: str, table: str, load_id: int) -> str:
    """``gadm__adm_2__retired_l17``: the live table load 17 replaced, until it is dropped."""
    return bounded(f"{dataset}__{table}", f"__retired_l{load_id}")


def index_roles(key: str, indexed: Iterable[str]) -> list[str]:
    """What follows ``<table>_`` in the name of each index a layer's table gets."""
    return ["pkey", "geom_idx", *(f"{column}_idx" for column in indexed if column != key)]


def index_name(table: str, role: str) -> str:
    return bounded(f"{table}_{role}")


def lookup_table(dataset: str) -> str:
    """``gadm_lookup``: a dataset's lookup table, named after the dataset, not the schema,
    so that several datasets in one schema (the time zone variants) get one each."""
    return f"{dataset}_lookup"


#: What follows ``<table>_`` in the names of a lookup table's indexes (GiST on the pieces,
#: B-tree on the cell).
LOOKUP_INDEX_ROLES = ("geom_idx", "cell_idx")


def longest_derived(stem: str, table: str, roles: Iterable[str]) -> str:
    """The longest name a load of ``table`` makes, written out in full: a retired table's
    index (``roles``: see :func:`index_roles`), for a load id of :data:`LOAD_ID_DIGITS`
    digits."""
    retired = f"{stem}__{table}__retired_l{'9' * LOAD_ID_DIGITS}"
    return max((f"{retired}_{role}" for role in roles), key=lambda name: len(name.encode()))
