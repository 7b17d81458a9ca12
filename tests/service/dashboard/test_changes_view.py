"""What the run and dataset pages make of a change report (service/dashboard/changes.py)."""

from __future__ import annotations

from service.changes import ChangeReport, LayerChanges, Renamed, Reshaped
from service.dashboard import changes

REPORT = ChangeReport("gadm", 7, False, (
    LayerChanges("gadm.adm_1", added=("ITA.2_1",), renamed=(
        Renamed("CHE.2_1", {"name_1": ("Zürich", "Zurich")}),), reshaped=(
        Reshaped("CHE.2_1", 198430.04, 198422.21, 7.83),
        # a feature kept with geom NULL in one version has no area there
        Reshaped("FRA.1_1", None, 285169.4, None))),
    LayerChanges("gadm.adm_2", removed=("ESP.1.2_1",)),
), 0.05)


def test_rows_name_every_change_and_a_missing_area_is_a_dash() -> None:
    shown = changes.view(REPORT, live_load_id=7)
    assert shown is not None
    assert [(r["source"], r["change"], r["key"], r["detail"]) for r in shown["rows"]] == [
        ("gadm.adm_1", "added", "ITA.2_1", ""),
        ("gadm.adm_1", "renamed", "CHE.2_1", "name_1: Zürich → Zurich"),
        ("gadm.adm_1", "reshaped", "CHE.2_1", "198,430.0 → 198,422.2 km², 7.8 km² changed"),
        ("gadm.adm_1", "reshaped", "FRA.1_1", "— → 285,169.4 km², — km² changed"),
        ("gadm.adm_2", "removed", "ESP.1.2_1", ""),
    ]
    assert shown["counts"] == {"added": 1, "removed": 1, "renamed": 1, "reshaped": 2}


def test_a_map_only_while_the_load_is_live_and_only_of_layers_with_new_shapes() -> None:
    live = changes.view(REPORT, live_load_id=7)
    assert live is not None
    assert live["previews"] == [{"table": "gadm.adm_1",
                                 "url": "/datasets/gadm/ADM_1/preview.svg?changes=1"}]
    retired = changes.view(REPORT, live_load_id=8)
    assert retired is not None and retired["previews"] == []
    assert changes.view(None, live_load_id=7) is None
    assert changes.highlighted(REPORT, "gadm.adm_1") == ["CHE.2_1", "FRA.1_1", "ITA.2_1"]
