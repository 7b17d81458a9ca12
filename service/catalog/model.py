"""The shape of a catalog entry: where a dataset comes from and where it goes.

A dataset is data, not code: adding one means writing a :class:`Dataset` in a
new module of this package, never new plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    (see :mod:`service.columns`).
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
    ``keep_other_fields``: load fields the catalog does not list (with a warning);
    False when the catalog declares the table's whole shape.
    """

    name: str
    table: str
    fields: tuple[Field, ...]
    keep_other_fields: bool = True
    key: str = SOURCE_FID
    indexes: tuple[str, ...] = ()
    feature_key: str | None = None

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
    """

    url: str
    member: str
    archive: str | None = "zip"
    release_setting: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its source, its layers and its licence."""

    name: str
    title: str
    source: Source
    layers: tuple[Layer, ...]
    licence: str
    homepage: str

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
        from service.errors import BadMessage

        raise BadMessage(f"dataset {self.name!r} has no layer {name!r}",
                         dataset=self.name,
                         hint=f"known layers: {', '.join(lay.name for lay in self.layers)}")

    @property
    def schemas(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(layer.schema for layer in self.layers))
