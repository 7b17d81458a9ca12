import numpy as np
import shapely

from service.repair import repair


def wkb(*wkts):
    return np.array([None if w is None else shapely.to_wkb(shapely.from_wkt(w))
                     for w in wkts], dtype=object)


def back(result):
    return [None if w is None else shapely.from_wkb(w) for w in result.wkb]


def test_polygons_are_promoted_and_multipolygons_kept():
    result = repair(wkb("POLYGON((0 0,1 0,1 1,0 0))",
                        "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))"))
    geoms = back(result)
    assert [g.geom_type for g in geoms] == ["MultiPolygon", "MultiPolygon"]
    assert shapely.equals(geoms[0], shapely.from_wkt("POLYGON((0 0,1 0,1 1,0 0))"))
    assert result.promoted == 1 and result.repaired == 0


def test_invalid_rings_are_made_valid_keeping_their_area():
    bowtie = "POLYGON((0 0,10 10,10 0,0 10,0 0))"
    spike = "POLYGON((0 0,10 0,10 10,5 10,5 20,5 10,0 10,0 0))"
    result = repair(wkb(bowtie, spike))
    geoms = back(result)
    assert all(g.is_valid and g.geom_type == "MultiPolygon" for g in geoms)
    assert geoms[0].area == 50 and geoms[1].area == 100
    assert result.repaired == 2


def test_holes_survive():
    with_hole = "POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,2 4,4 4,4 2,2 2))"
    (geom,) = back(repair(wkb(with_hole)))
    assert geom.area == 96


def test_null_and_empty_are_counted_and_stay_null():
    result = repair(wkb(None, "POLYGON EMPTY", "POLYGON((0 0,1 0,1 1,0 0))"))
    assert result.empty == 2
    assert result.wkb[0] is None and result.wkb[1] is None and result.wkb[2] is not None


def test_collections_keep_polygonal_parts_and_count_the_rest():
    result = repair(wkb("GEOMETRYCOLLECTION(POLYGON((0 0,1 0,1 1,0 0)),LINESTRING(0 0,5 5),"
                        "MULTIPOLYGON(((7 7,8 7,8 8,7 7))))"))
    (geom,) = back(result)
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert result.parts_dropped == 1


def test_what_cannot_be_polygonal_is_reported_by_row():
    result = repair(wkb("POINT(1 1)", "POLYGON((0 0,10 0,20 0,0 0))",
                        "POLYGON((0 0,1 0,1 1,0 0))"))
    assert list(result.unrepairable) == [0, 1]


def test_out_of_bounds_and_malformed_are_reported():
    data = wkb("POLYGON((0 0,200 0,200 1,0 0))", "POLYGON((0 0,1 0,1 1,0 0))")
    data = np.append(data, np.array([b"\x01\x03garbage"], dtype=object))
    result = repair(data)
    assert list(result.out_of_bounds) == [0]
    assert list(result.malformed) == [2]


def test_output_is_2d_little_endian_wkb():
    (raw,) = repair(wkb("POLYGON Z((0 0 5,1 0 5,1 1 5,0 0 5))")).wkb
    assert raw[:1] == b"\x01" and not shapely.has_z(shapely.from_wkb(raw))


def test_valid_source_wkb_passes_through_byte_for_byte_like_geos_would_write_it():
    poly = shapely.from_wkt("POLYGON((0 0,1 0,1 1,0 0))")
    multi = shapely.from_wkt("MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))")
    data = np.array([shapely.to_wkb(poly), shapely.to_wkb(multi)], dtype=object)
    out = repair(data).wkb
    assert out[1] is data[1]
    assert out[0] == shapely.to_wkb(shapely.multipolygons([poly]), byte_order=1)
    big_endian = np.array([shapely.to_wkb(poly, byte_order=0)], dtype=object)
    assert repair(big_endian).wkb[0] == out[0]


def test_is_valid_part_by_part_agrees_with_geos_on_every_kind_of_multipolygon(monkeypatch):
    from service.repair import is_valid
    from service.repair import validity as repair_module

    monkeypatch.setattr(repair_module, "PART_BY_PART_MIN_VERTICES", 1)  # every one of these

    cases = [
        "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)),((5 5,6 5,6 6,5 6,5 5)))",        # apart: valid
        "MULTIPOLYGON(((0 0,2 0,2 2,0 2,0 0)),((1 1,3 1,3 3,1 3,1 1)))",        # overlap
        "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)),((1 0,2 0,2 1,1 1,1 0)))",        # share an edge
        "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)),((1 1,2 1,2 2,1 2,1 1)))",        # meet at a point
        "MULTIPOLYGON(((0 0,1 1,1 0,0 1,0 0)),((5 5,6 5,6 6,5 6,5 5)))",        # a bowtie apart
        "MULTIPOLYGON(((0 0,9 0,9 9,0 9,0 0)),((4 4,5 4,5 5,4 5,4 4)))",        # nested shells
        "MULTIPOLYGON(((0 0,9 0,9 9,0 9,0 0),(3 3,6 3,6 6,3 6,3 3)),((4 4,5 4,5 5,4 5,4 4)))",
        "MULTIPOLYGON EMPTY", "POLYGON((0 0,1 1,1 0,0 1,0 0))", "POLYGON((0 0,1 0,1 1,0 0))",
        None,
    ]
    geoms = np.array([None if w is None else shapely.from_wkt(w) for w in cases], dtype=object)
    rng = np.random.default_rng(7)  # and random archipelagos, some of whose islands collide
    for _ in range(200):
        islands = [shapely.box(x, y, x + w, y + w) for x, y, w in
                   rng.uniform([-50, -50, 0.5], [50, 50, 8], size=(int(rng.integers(2, 8)), 3))]
        geoms = np.append(geoms, shapely.MultiPolygon(islands))
    expected = shapely.is_valid(geoms)
    assert list(is_valid(geoms)) == list(expected)
    assert expected[0] and not expected[1] and not expected[2] and expected[3]
    assert not expected[4] and not expected[5] and expected[6]


def test_big_multipolygons_checked_from_their_bytes_repair_exactly_as_whole(monkeypatch):
    from service.repair import validity as repair_module

    cases = [
        "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)),((5 5,6 5,6 6,5 6,5 5)))",        # apart: as is
        "MULTIPOLYGON(((0 0,2 0,2 2,0 2,0 0)),((1 1,3 1,3 3,1 3,1 1)))",        # overlap
        "MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)),((1 1,2 1,2 2,1 2,1 1)))",        # touch
        "MULTIPOLYGON(((0 0,1 1,1 0,0 1,0 0)),((5 5,6 5,6 6,5 6,5 5)))",        # a bowtie
        "MULTIPOLYGON(((0 0,9 0,9 9,0 9,0 0),(3 3,6 3,6 6,3 6,3 3)),((4 4,5 4,5 5,4 5,4 4)))",
        "MULTIPOLYGON(((170 0,190 0,190 1,170 0)),((0 5,1 5,1 6,0 5)))",        # off the globe
        "MULTIPOLYGON Z(((0 0 1,1 0 1,1 1 1,0 0 1)),((5 5 1,6 5 1,6 6 1,5 5 1)))",
        "POLYGON((0 0,1 0,1 1,0 0))", "MULTIPOLYGON EMPTY", "POINT(3 3)", None,
    ]
    data = wkb(*cases)
    data = np.append(data, np.array([data[0][:-3], data[0] + b"\x00", b"\x01\x06\x00\x00\x00",
                                     shapely.to_wkb(shapely.from_wkt(cases[0]), byte_order=0)],
                                    dtype=object))
    rng = np.random.default_rng(11)  # random archipelagos, some of whose islands collide
    for _ in range(100):
        islands = [shapely.box(x, y, x + w, y + w) for x, y, w in
                   rng.uniform([-50, -50, 0.5], [50, 50, 8], size=(int(rng.integers(2, 8)), 3))]
        data = np.append(data, shapely.to_wkb(shapely.MultiPolygon(islands)))

    whole = repair(data)
    monkeypatch.setattr(repair_module, "BIG_WKB_BYTES", 1)          # every row, and parts
    monkeypatch.setattr(repair_module, "PART_GROUP_BYTES", 150)     # decoded a few at a time
    by_parts = repair(data)
    assert list(by_parts.wkb) == list(whole.wkb)
    for name in ("empty", "repaired", "promoted", "parts_dropped"):
        assert getattr(by_parts, name) == getattr(whole, name), name
    for name in ("unrepairable", "out_of_bounds", "malformed"):
        assert list(getattr(by_parts, name)) == list(getattr(whole, name)), name
    assert list(whole.out_of_bounds) == [5] and list(whole.unrepairable) == [9]
    assert list(whole.malformed) == [11, 13]  # GEOS reads past a trailing byte (row 12)
    assert by_parts.wkb[0] is data[0]   # apart and valid: its own bytes, untouched
    decided = [repair_module.valid_apart(w) for w in data[:5]]
    assert decided == [True, False, False, False, False]  # [4]: valid, but envelopes meet

