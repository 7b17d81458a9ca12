"""Fixtures for the test-data package: tiny generated files, extracted once per session."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from devtools.testdata.mirror import Manifest, generate


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The "tiny" data set at upstream's paths (generated in well under a second)."""
    return generate(tmp_path_factory.mktemp("tiny-mirror"), size="tiny")


@pytest.fixture(scope="session")
def tiny_gpkg(tiny: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GeoPackage extracted: GeoPackages must not be read through /vsizip/."""
    out = tmp_path_factory.mktemp("tiny-gpkg")
    with zipfile.ZipFile(tiny.gadm.path) as zf:
        zf.extract(tiny.gadm.member, out)
    return out / tiny.gadm.member
