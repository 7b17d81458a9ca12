"""The dashboard shows what each load chose (issue 13): countries, levels and schema on the
run page and on the datasets page, beside what the catalog would have loaded."""

from __future__ import annotations

import re

from service.pipeline.messages import FETCH, PLAN, Next
from tests.service.dashboard.support import Client
from tests.support.driver import drain, new_run


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_run_and_datasets_pages_show_each_loads_choices(clean_db, serve):
    mine = new_run(clean_db, "gadm", levels=(0, 1), schema="mine")
    drain(clean_db, [Next(FETCH, (mine, "gadm")), Next(PLAN, (mine, "gadm"))])
    by_country = new_run(clean_db, "gadm", countries=("NPL", "DZA"), levels=(0, 2))
    client = Client(serve(clean_db).url)

    run_page = client.get(f"/runs/{mine}")
    assert run_page.status_code == 200
    shown = re.findall(r'data-test="options">([^<]*)<', run_page.text)
    assert shown == ["levels 0,1 · schema mine"], shown
    queued = client.get(f"/runs/{by_country}")  # shown from enqueue on, in the order given
    assert re.findall(r'data-test="options">([^<]*)<', queued.text) == [
        "countries NPL,DZA · levels 0,2"]

    datasets = client.get("/datasets")
    assert datasets.status_code == 200
    text = _text(datasets.text)
    assert "levels 0,1 · schema mine" in text, text[:2000]
    assert "mine.adm_0" in text and "mine.adm_1" in text
    api = client.get(f"/api/runs/{mine}").json()
    assert any("schema mine" in str(d) for d in api["datasets"]), api
