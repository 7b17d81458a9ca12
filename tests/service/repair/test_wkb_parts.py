import numpy as np
import shapely

from service.repair.wkb_parts import groups, lengths, polygon_spans


def test_polygon_spans_walk_only_plain_2d_little_endian_multipolygons():
    multi = shapely.from_wkt("MULTIPOLYGON(((0 0,1 0,1 1,0 0)),"
                             "((5 5,6 5,6 6,5 5),(5.2 5.1,5.8 5.1,5.8 5.7,5.2 5.1)))")
    raw = shapely.to_wkb(multi)
    spans = polygon_spans(raw)
    assert spans is not None and spans[-1][1] == len(raw)
    assert [shapely.from_wkb(raw[a:b]) for a, b in spans] == list(multi.geoms)
    assert groups(spans, 1) == [[spans[0]], [spans[1]]]
    assert groups(spans, 10_000) == [spans]
    for other in (shapely.to_wkb(multi, byte_order=0), shapely.to_wkb(multi.geoms[0]),
                  shapely.to_wkb(shapely.force_3d(multi)), raw[:-1], raw + b"\x00",
                  shapely.to_wkb(shapely.from_wkt("MULTIPOLYGON EMPTY"))):
        assert polygon_spans(other) is None


def test_lengths_counts_each_wkb_and_zero_for_none():
    wkb = np.array([b"\x01" * 21, None, b""], dtype=object)
    assert lengths(wkb).tolist() == [21, 0, 0]
