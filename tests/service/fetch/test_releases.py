"""The timezone release: pinned by its setting, else asked of GitHub's releases API (a
loopback server stands in for it) and kept a day, else the default with a warning."""

from __future__ import annotations

import logging
from dataclasses import replace

from service import catalog
from service.fetch.releases import release_for
from tests.support.releases import github


def unpinned(settings, tmp_path, api: str):
    extra = {k: v for k, v in settings.extra.items() if k != "GEOLOAD_TIMEZONE_RELEASE"}
    return replace(settings, extra=extra, cache_dir=tmp_path, github_api=api)


def test_the_newest_release_is_asked_once_a_day(base_settings, tmp_path):
    with github("2027a") as (api, asked):
        settings = unpinned(base_settings, tmp_path, api)
        assert release_for(catalog.get("timezone-land"), settings) == "2027a"
        assert release_for(catalog.get("timezone"), settings) == "2027a"
    assert asked == ["/repos/evansiroky/timezone-boundary-builder/releases/latest"]


def test_a_pinned_release_is_never_asked(base_settings, tmp_path):
    with github("2027a") as (api, asked):
        settings = replace(unpinned(base_settings, tmp_path, api), timezone_release="2025b",
                           extra={"GEOLOAD_TIMEZONE_RELEASE": "2025b"})
        assert release_for(catalog.get("timezone"), settings) == "2025b"
    assert asked == []
    assert release_for(catalog.get("gadm"), settings) is None


def test_without_network_the_default_is_loaded_with_a_warning(base_settings, tmp_path, caplog):
    with github("2027a") as (api, _):
        pass  # the server is gone: nothing listens on its port any more
    settings = unpinned(base_settings, tmp_path, api)
    with caplog.at_level(logging.WARNING):
        assert release_for(catalog.get("timezone"), settings) == settings.timezone_release
    assert "GEOLOAD_TIMEZONE_RELEASE" in caplog.text and "newest release" in caplog.text
