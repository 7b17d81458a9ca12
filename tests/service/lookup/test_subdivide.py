"""Cutting polygons into lookup pieces: small, in one grid cell, and adding up exactly."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from devtools.testdata import _geom as g
from service.lookup.subdivide import Grid, subdivide


def _coastlines() -> np.ndarray:
    """Jagged rings with holes and islands, as the generator draws time zones."""
    rng = np.random.default_rng(3)
    boxes = np.array([[-170.0, -60.0, -20.0, 70.0], [10.0, -10.0, 12.0, -8.0],
                      [100.0, 20.0, 179.9, 80.0]])
    layout = g.Layout(main=boxes, main_n=np.array([6_000, 300, 3_000]),
                      island_box=np.array([[-19.0, -58.0, -12.0, -50.0]]),
                      island_owner=np.array([0]), island_n=np.array([2_000]),
                      hole_box=np.array([[120.0, 40.0, 140.0, 60.0]]),
                      hole_owner=np.array([2]), hole_n=np.array([800]),
                      defect=np.zeros(3, np.int8), single=np.zeros(3, bool))
    return g.build(layout, rng).geoms


@pytest.mark.parametrize(("max_vertices", "level"), [(32, 4), (255, 8), (64, 6)])
def test_pieces_are_small_valid_in_one_cell_and_cover_their_area(max_vertices: int,
                                                                 level: int) -> None:
    geoms = _coastlines()
    assert shapely.is_valid(geoms).all()
    grid = Grid(level)
    pieces = subdivide(geoms, max_vertices, grid)
    assert shapely.get_num_coordinates(pieces.geoms).max() <= max_vertices
    assert shapely.is_valid(pieces.geoms).all()
    bounds = shapely.bounds(pieces.geoms)
    column, row = np.divmod(pieces.cell, grid.size)
    assert (bounds[:, 0] >= column * grid.width - 180).all()
    assert (bounds[:, 2] <= (column + 1) * grid.width - 180).all()
    assert (bounds[:, 1] >= row * grid.height - 90).all()
    assert (bounds[:, 3] <= (row + 1) * grid.height - 90).all()
    for owner, geom in enumerate(geoms):
        mine = pieces.geoms[pieces.owner == owner]
        assert shapely.area(mine).sum() == pytest.approx(geom.area, rel=1e-12)
        assert shapely.union_all(mine).symmetric_difference(geom).area < 1e-9 * geom.area


def test_a_small_polygon_inside_one_cell_stays_whole() -> None:
    square = shapely.box(8.5, 47.2, 8.6, 47.3)  # inside the cell 8.4375..9.84375 × 47.109375..
    pieces = subdivide(np.array([square]), 255, Grid(8))
    assert len(pieces.geoms) == 1 and pieces.geoms[0].equals(square)
