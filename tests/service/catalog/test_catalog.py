from dataclasses import replace

import pytest

from service import catalog
from service import settings as config
from service.catalog import Dataset, Field, Layer, Source
from service.catalog.gadm import level_fields
from service.errors import ConfigError, UnknownDataset
from service.fetch.mirror import source_url
from tests.data import gadm41_fields, gadm41_keys


def test_ships_gadm_and_timezone():
    gadm = catalog.get("gadm")
    assert [layer.table for layer in gadm.layers] == [f"gadm.adm_{i}" for i in range(6)]
    assert [layer.name for layer in gadm.layers] == [f"ADM_{i}" for i in range(6)]
    assert gadm.url(config.from_env({})) == (
        "https://geodata.ucdavis.edu/gadm/gadm4.1/gadm_410-levels.zip")
    tz = catalog.get("timezone")
    assert tz.layers[0].table == "timezone.timezones"
    assert tz.layers[0].key == "tzid"


def test_gadm_fields_are_gadm41s_published_fields_in_order():
    """Checked against tests/data/gadm41_fields.json, written from the published file."""
    layers = catalog.get("gadm").layers
    assert {layer.name: [f.name for f in layer.fields] for layer in layers} == gadm41_fields()


def test_gadm_keys_are_every_gid_and_country():
    layers = catalog.get("gadm").layers
    assert {layer.name: [f.name for f in layer.fields if f.key] for layer in layers} == (
        gadm41_keys())
    assert all(f.type == "text" for layer in layers for f in layer.fields)


def test_gadm_levels_index_their_join_keys_and_name_features_by_gid():
    gadm = catalog.get("gadm")
    # country, parent and own key (last), not every ancestor's
    assert gadm.layers[4].indexes == ("gid_0", "gid_3", "gid_4")
    assert [layer.indexes for layer in gadm.layers[:3]] == [
        ("gid_0",), ("gid_0", "gid_1"), ("gid_0", "gid_1", "gid_2")]
    assert [layer.feature_key for layer in gadm.layers] == [f"GID_{k}" for k in range(6)]
    assert [f.name for f in level_fields(0)] == ["GID_0", "COUNTRY"]


def test_timezone_key_is_tzid():
    (layer,) = catalog.get("timezone").layers
    assert [(f.name, f.key) for f in layer.fields] == [("tzid", True)]
    assert layer.feature_key == "tzid"


def test_timezone_release_is_a_setting():
    settings = config.from_env({"GEOLOAD_TIMEZONE_RELEASE": "2025b"})
    url = catalog.get("timezone").url(settings)
    assert url.endswith("/releases/download/2025b/timezones-with-oceans.shapefile.zip")
    assert catalog.get("timezone").release(settings) == "2025b"


def test_mirror_replaces_scheme_and_host_and_keeps_path():
    settings = replace(config.from_env({}), mirror="http://127.0.0.1:8000/pre")
    assert source_url(catalog.get("gadm"), settings) == (
        "http://127.0.0.1:8000/pre/gadm/gadm4.1/gadm_410-levels.zip")


def test_unknown_dataset_suggests_the_closest_and_lists_all():
    with pytest.raises(UnknownDataset) as caught:
        catalog.resolve(["timezone", "gadn"])
    text = str(caught.value)
    assert "'gadn'" in text and "did you mean 'gadm'" in text
    assert "known datasets: gadm, timezone" in text


def test_resolve_keeps_order_and_drops_repeats():
    assert [d.name for d in catalog.resolve(["timezone", "gadm", "timezone"])] == [
        "timezone", "gadm"]


# --- names PostgreSQL would truncate are refused when the catalog is built --------------------

def _layer(**changes) -> Layer:
    return replace(Layer(name="L", table="s.t", fields=(Field("GID_0"),), indexes=("gid_0",)),
                   **changes)


def _dataset(name: str = "d", *layers: Layer) -> Dataset:
    return Dataset(name, "title", Source("https://example.org/d.zip", "*.gpkg"),
                   layers or (_layer(),), "licence", "https://example.org")


@pytest.mark.parametrize(("build", "problem"), [
    (lambda: _layer(table="s." + "t" * 64), r"table name '.+' is 64 bytes"),
    (lambda: _layer(table="ß" * 32 + ".t"), r"schema name 'ß+' is 64 bytes"),
    (lambda: _layer(table="no_schema"), r"table 'no_schema' must be schema\.table"),
    (lambda: _layer(fields=(Field("F" * 64),)), r"column name 'f+' is 64 bytes"),
    (lambda: _layer(indexes=("i" * 60,)), r"index name 't_i+_idx' is 66 bytes"),
    (lambda: _dataset("d" * 40), r"name 'd+__t__retired_l9+_gid_0_idx' would be 74 bytes"),
    # the lookup table's names: d*23 + __ + d*23_lookup + __retired_l9999999999_geom_idx
    (lambda: _dataset("d" * 23), r"lookup table 'd+_lookup': name 'd+__d+_lookup__retired_l9+_"
                                 r"geom_idx' would be 85 bytes, over 63"),
    (lambda: _dataset("d", _layer(table="s.d_lookup")),
     r"layer 'L' loads into a table named 'd_lookup', the name of the dataset's lookup table"),
    (lambda: _dataset("d", _layer(), _layer(name="M", table="other.t")),
     r"layers 'L' and 'M' both load into a table named 't'"),
])
def test_names_postgresql_would_truncate_are_refused(build, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        build()
    assert "What to do:" in str(caught.value)


def test_the_shipped_catalog_fits():
    from dataclasses import replace

    for dataset in catalog.DATASETS.values():
        assert replace(dataset).name == dataset.name  # the checks run again
        if dataset.prefix is None:
            assert _dataset(dataset.name, *dataset.layers).name == dataset.name


def test_a_prefix_keeps_a_long_variants_names_whole():
    land_1970 = catalog.get("timezone-land-1970")
    with pytest.raises(ConfigError, match="would be 69 bytes"):
        _dataset(land_1970.name, *land_1970.layers)


@pytest.mark.parametrize("name", catalog.names())
def test_every_name_a_load_derives_fits_in_63_bytes(name):
    """Written out by hand for a ten-digit load id: the staging and retired tables of every
    layer and of the lookup table, and their indexes (issue: the lookup's were unchecked)."""
    from service.lookup import lookup_table, staging_table

    ds = catalog.get(name)
    load_id, lookup = 9_999_999_999, lookup_table(ds).split(".", 1)[1]
    lookup_staging = staging_table(ds, load_id)
    assert lookup_staging == f"{ds.stem}__{lookup}__l{load_id}"  # the stem, as the layers'
    indexed: dict[str, tuple[str, ...]] = {lookup: ("geom_idx", "cell_idx")}  # GiST, B-tree
    for layer in ds.layers:
        indexed[layer.table_name] = ("pkey", "geom_idx", *(
            f"{column}_idx" for column in layer.indexes if column != layer.key))
    derived = [f"{ds.stem}__{table}__{retired}l{load_id}_{role}"
               for table, roles in indexed.items() for role in roles
               for retired in ("", "retired_")]
    assert max(len(n.encode()) for n in derived) <= 63, max(derived, key=len)


def test_the_refresh_keeps_a_variant_current_only_once_it_was_loaded():
    assert catalog.refreshed(set()) == ["gadm", "timezone"]
    assert catalog.refreshed({"timezone-land"}) == ["gadm", "timezone", "timezone-land"]


#: Issue 13's table, and ../shared/NOTES.md's asset names (``timezones{,-with-oceans}
#: {,-now,-1970}.shapefile.zip`` holding ``combined-shapefile*.shp``), written out by hand.
TIMEZONE_VARIANTS = {
    "timezone": ("timezones-with-oceans", "timezone.timezones"),
    "timezone-land": ("timezones", "timezone.timezones_land"),
    "timezone-now": ("timezones-with-oceans-now", "timezone.timezones_now"),
    "timezone-land-now": ("timezones-now", "timezone.timezones_land_now"),
    "timezone-1970": ("timezones-with-oceans-1970", "timezone.timezones_1970"),
    "timezone-land-1970": ("timezones-1970", "timezone.timezones_land_1970"),
}


@pytest.mark.parametrize("name", sorted(TIMEZONE_VARIANTS))
def test_each_timezone_variant_is_upstreams_asset_in_a_table_of_its_own(name):
    asset, table = TIMEZONE_VARIANTS[name]
    dataset = catalog.get(name)
    assert dataset.source.url.format(release="2026c") == (
        "https://github.com/evansiroky/timezone-boundary-builder/releases/download/2026c/"
        f"{asset}.shapefile.zip")
    assert dataset.source.member == "combined-shapefile*.shp"
    assert [layer.table for layer in dataset.layers] == [table]
    assert [f.name for f in dataset.layers[0].fields] == ["tzid"]
