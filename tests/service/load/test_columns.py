import pytest

from service.catalog import Field, Layer
from service.data_warnings import MISSING_FIELD, TYPE_CHANGED, UNKNOWN_FIELD
from service.errors import BadSource
from service.load.columns import plan_columns
from service.read import LayerInfo, SourceField

LAYER = Layer(name="L", table="s.t", fields=(Field("GID_0", key=True), Field("NAME_0"),
                                             Field("AREA", "double precision")))
ZONES = Layer(name="Z", table="s.z", fields=(Field("tzid", key=True),), key="tzid")
AS_PUBLISHED = (("GID_0", "text"), ("NAME_0", "text"), ("AREA", "double precision"))


def info(*fields):
    return LayerInfo(name="L", driver="GPKG", count=1, geometry_type="MultiPolygon",
                     crs="EPSG:4326", fid_column="fid",
                     fields=tuple(SourceField(n, t) for n, t in fields))


def columns(plan):
    return [(c.name, c.source, c.type) for c in plan.columns]


def test_the_catalogs_fields_load_as_published_without_warnings():
    plan = plan_columns(LAYER, info(*AS_PUBLISHED))
    assert columns(plan) == [("fid", "__fid", "bigint"), ("gid_0", "GID_0", "text"),
                             ("name_0", "NAME_0", "text"),
                             ("area", "AREA", "double precision")]
    assert plan.warnings == []
    assert plan.sources == ["GID_0", "NAME_0", "AREA"]


def test_an_unknown_field_is_loaded_lower_cased_with_a_warning():
    plan = plan_columns(LAYER, info(("GID_0", "text"), ("Extra", "bigint"), ("NAME_0", "text"),
                                    ("AREA", "double precision")))
    assert columns(plan)[-1] == ("extra", "Extra", "bigint")  # after the catalog's columns
    assert [(w.kind, w.layer, w.field) for w in plan.warnings] == [(UNKNOWN_FIELD, "L", "Extra")]
    assert "not in the catalog; loaded as column extra" in plan.warnings[0].message


def test_a_missing_non_key_field_keeps_its_column_null_with_a_warning():
    plan = plan_columns(LAYER, info(("GID_0", "text"), ("AREA", "double precision")))
    assert columns(plan) == [("fid", "__fid", "bigint"), ("gid_0", "GID_0", "text"),
                             ("name_0", None, "text"), ("area", "AREA", "double precision")]
    assert plan.sources == ["GID_0", "AREA"]
    assert [(w.kind, w.field) for w in plan.warnings] == [(MISSING_FIELD, "NAME_0")]
    assert "NAME_0 is missing from the source; column name_0 is created and left NULL" in (
        plan.warnings[0].message)


def test_a_non_key_type_change_loads_as_text_with_a_warning():
    plan = plan_columns(LAYER, info(("GID_0", "text"), ("NAME_0", "integer"),
                                    ("AREA", "text")))
    assert columns(plan)[2:] == [("name_0", "NAME_0", "text"), ("area", "AREA", "text")]
    assert [(w.kind, w.field) for w in plan.warnings] == [(TYPE_CHANGED, "NAME_0"),
                                                          (TYPE_CHANGED, "AREA")]
    assert "AREA is text, the catalog expects double precision; loaded as text" in (
        plan.warnings[1].message)


def test_a_missing_key_fails_naming_it_and_listing_the_layer():
    with pytest.raises(BadSource, match=r"required key field\(s\) GID_0 missing; the layer has "
                                        r"NAME_0 \(text\), AREA \(double precision\)"):
        plan_columns(LAYER, info(("NAME_0", "text"), ("AREA", "double precision")))


def test_a_key_of_another_type_fails():
    with pytest.raises(BadSource, match="key field 'GID_0' is integer, the catalog expects text"):
        plan_columns(LAYER, info(("GID_0", "integer"), ("NAME_0", "text")))


def test_a_layer_keyed_by_a_field_loads_an_unknown_field_too():
    """Issue 11: time zones follow the same rule as GADM (no fid column, tzid the key)."""
    plan = plan_columns(ZONES, info(("tzid", "text"), ("TZID_OLD", "text")))
    assert columns(plan) == [("tzid", "tzid", "text"), ("tzid_old", "TZID_OLD", "text")]
    assert [(w.kind, w.field) for w in plan.warnings] == [(UNKNOWN_FIELD, "TZID_OLD")]


def test_case_collisions_and_reserved_names_are_refused():
    with pytest.raises(BadSource, match="same column"):
        plan_columns(LAYER, info(*AS_PUBLISHED, ("gid_0", "text")))
    with pytest.raises(BadSource, match="collides"):
        plan_columns(LAYER, info(*AS_PUBLISHED, ("GEOM", "text")))


def test_hostile_names_are_kept_verbatim_for_quoting():
    plan = plan_columns(LAYER, info(*AS_PUBLISHED, ('x"; DROP TABLE t; --', "text")))
    assert plan.columns[-1].name == 'x"; drop table t; --'
