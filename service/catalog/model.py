"""The shape of a catalog entry: where a dataset comes from and where it goes.

A dataset is data, not code: adding one means writing a :class:`Dataset` in a
new module of this package, never new plumbing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from service.errors import ConfigError
from service.load import names
from service.settings import Settings

#: The key column name meaning "the source's own feature id".
SOURCE_FID = "fid"


@dataclass(frozen=True)
class Field:
    """A field the catalog expects in the source layer.

    ``name`` is spelled as upstream spells it; the column is its lower-cased form.
    A ``key`` field is one the data can't do without (GADM's ``GID_k`` joins the
    levels, ``tzid`` names a zone): missing, or of another type, it fails the load.
    Any other field that upstream drops or retypes is loaded anyway, with a warning
    (see :mod:`service.load.columns`).
    """

    name: str
    type: str = "text"
    key: bool = False

    @property
    def column(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Layer:
    """One source layer and the table it becomes.

    ``key`` is the primary key column: ``fid`` (the source's feature id, added as a
    column) or one of the fields. ``indexes`` are B-tree indexed columns, such as
    the GADM keys that join one level to the next. ``feature_key`` is the field that
    names a feature to a person (GADM's ``GID_k``), shown beside its fid in warnings.
    Fields the catalog does not list are loaded too, with a warning (see
    :mod:`service.load.columns`). ``level``: the administrative level the layer holds,
    for ``--levels`` (None: not a level).
    """

    name: str
    table: str
    fields: tuple[Field, ...]
    key: str = SOURCE_FID
    indexes: tuple[str, ...] = ()
    feature_key: str | None = None
    level: int | None = None

    def __post_init__(self) -> None:
        _check_layer_names(self)

    @property
    def schema(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]


@dataclass(frozen=True)
class Source:
    """Where upstream publishes the file.

    ``url`` may hold ``{release}``, filled from the setting named by
    ``release_setting``. ``member`` is a glob for the file to read inside the
    archive. ``sha256`` pins the content where upstream's file never changes.
    ``layer`` spells a catalog layer's name as this file does (GADM's per-country
    files call ``ADM_1`` ``ADM_ADM_1``). ``user``: a user's own file (``--source``), a
    URL fetched as given (no mirror) or a local path read in place.
    """

    url: str
    member: str
    archive: str | None = "zip"
    release_setting: str | None = None
    sha256: str | None = None
    layer: str = "{name}"
    user: bool = False

    def layer_name(self, catalog_name: str) -> str:
        return self.layer.format(name=catalog_name)


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its source, its layers and its licence.

    ``parts`` is where upstream also publishes the dataset one file per country, its URL
    holding ``{part}`` (a GID_0 code); ``part_codes`` lists the codes it publishes.
    ``prefix`` starts the names of its staging and retired tables, where the dataset's
    name would make them too long (see :attr:`stem`). ``always_refreshed``: the scheduled
    refresh checks it even before its first load (others, once they were loaded).
    """

    name: str
    title: str
    source: Source
    layers: tuple[Layer, ...]
    licence: str
    homepage: str
    parts: Source | None = None
    part_codes: tuple[str, ...] = ()
    prefix: str | None = None
    always_refreshed: bool = True

    @property
    def stem(self) -> str:
        """What the names of its staging and retired tables start with."""
        return self.prefix or self.name

    def __post_init__(self) -> None:
        _check_dataset_names(self)

    def release(self, settings: Settings) -> str | None:
        """The pinned release, for datasets whose URL names one."""
        if self.source.release_setting is None:
            return None
        return str(getattr(settings, self.source.release_setting))

    def url(self, settings: Settings) -> str:
        """The upstream URL (before any mirror)."""
        return self.source.url.format(release=self.release(settings) or "")

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from service.errors import ConfigError

        # A message naming a layer the deployed catalog lacks was planned under another
        # catalog: its load can't finish, so it fails (a BadMessage would dead-letter the
        # message and leave the load for the sweep to fail half an hour later).
        raise ConfigError(f"this load was planned with layer {name!r}, which the catalog no "
                          f"longer has (its layers: {', '.join(lay.name for lay in self.layers)})",
                          dataset=self.name,
                          hint=f"enqueue {self.name} again, to load it as the catalog describes "
                               "it now")

    @property
    def schemas(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layer.schema for layer in self.layers))


# --- names PostgreSQL would truncate (to 63 bytes) are refused when the catalog is built ------

_SHORTEN = ("shorten it in the catalog: PostgreSQL cuts names at 63 bytes, and a cut name can "
            "merge two columns, indexes or loads")


def _check_layer_names(layer: Layer) -> None:
    schema, dot, table = layer.table.partition(".")
    if not (dot and schema and table):
        raise ConfigError(f"layer {layer.name!r}: table {layer.table!r} must be schema.table",
                          hint="name the target table with its schema, e.g. gadm.adm_0")
    columns = [*(f.column for f in layer.fields), layer.key, *layer.indexes]
    for kind, name in [("schema", schema), ("table", table),
                       *(("column", column) for column in columns),
                       *(("index", f"{table}_{role}")
                         for role in names.index_roles(layer.key, layer.indexes))]:
        if len(name.encode()) > names.MAX_BYTES:
            raise ConfigError(f"layer {layer.name!r}: {kind} name {name!r} is "
                              f"{len(name.encode())} bytes, over {names.MAX_BYTES}",
                              hint=_SHORTEN)


def _check_dataset_names(dataset: Dataset) -> None:
    """Every layer, and the lookup table, gets staging and retired tables of its own, with
    whole names."""
    lookup = names.lookup_table(dataset.name)
    seen: dict[str, str] = {}
    for layer in dataset.layers:
        if layer.table_name == lookup:
            raise ConfigError(f"layer {layer.name!r} loads into a table named {lookup!r}, the "
                              "name of the dataset's lookup table", dataset=dataset.name,
                              hint="give the layer's table another name")
        if layer.table_name in seen:
            raise ConfigError(f"layers {seen[layer.table_name]!r} and {layer.name!r} both load "
                              f"into a table named {layer.table_name!r}; their staging tables "
                              "would be one", dataset=dataset.name,
                              hint="give each layer's table a name of its own")
        seen[layer.table_name] = layer.name
        _check_derived(dataset, f"layer {layer.name!r}", layer.table_name,
                       names.index_roles(layer.key, layer.indexes))
    _check_derived(dataset, f"lookup table {lookup!r}", lookup, names.LOOKUP_INDEX_ROLES)


def _check_derived(dataset: Dataset, what: str, table: str, roles: Iterable[str]) -> None:
    longest = names.longest_derived(dataset.stem, table, roles)
    if len(longest.encode()) > names.MAX_BYTES:
        raise ConfigError(f"{what}: name {longest!r} would be {len(longest.encode())} bytes, "
                          f"over {names.MAX_BYTES} (a retired table's index, for a "
                          f"{names.LOAD_ID_DIGITS}-digit load id)", dataset=dataset.name,
                          hint="shorten the dataset, table or indexed column name, or give "
                               "the dataset a shorter prefix: "
                               + _SHORTEN.removeprefix("shorten it in the catalog: "))
