import pytest

from service.catalog import Field, Layer
from service.columns import plan_columns
from service.errors import BadSource
from service.read import LayerInfo, SourceField

LAYER = Layer(name="L", table="s.t", fields=(Field("GID_0"), Field("NAME_0")))


def info(*fields):
    return LayerInfo(name="L", driver="GPKG", count=1, geometry_type="MultiPolygon",
                     crs="EPSG:4326", fid_column="fid",
                     fields=tuple(SourceField(n, t) for n, t in fields))


def test_keeps_every_field_lower_cased_after_the_fid():
    cols = plan_columns(LAYER, info(("GID_0", "text"), ("NAME_0", "text"), ("Extra", "bigint")))
    assert [(c.name, c.source, c.type) for c in cols] == [
        ("fid", "__fid", "bigint"), ("gid_0", "GID_0", "text"), ("name_0", "NAME_0", "text"),
        ("extra", "Extra", "bigint")]


def test_missing_field_names_it_and_lists_the_layer():
    with pytest.raises(BadSource, match=r"NAME_0 missing; the layer has GID_0 \(text\)"):
        plan_columns(LAYER, info(("GID_0", "text")))


def test_wrong_type_is_refused():
    with pytest.raises(BadSource, match="'NAME_0' is integer, the catalog expects text"):
        plan_columns(LAYER, info(("GID_0", "text"), ("NAME_0", "integer")))


def test_case_collisions_and_reserved_names_are_refused():
    with pytest.raises(BadSource, match="same column"):
        plan_columns(LAYER, info(("GID_0", "text"), ("NAME_0", "text"), ("gid_0", "text")))
    with pytest.raises(BadSource, match="collides"):
        plan_columns(LAYER, info(("GID_0", "text"), ("NAME_0", "text"), ("GEOM", "text")))


def test_hostile_names_are_kept_verbatim_for_quoting():
    cols = plan_columns(LAYER, info(("GID_0", "text"), ("NAME_0", "text"),
                                    ('x"; DROP TABLE t; --', "text")))
    assert cols[-1].name == 'x"; drop table t; --'
