"""The files a benchmark loads: generated at upstream's paths, or given as paths or URLs."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

from devtools.testdata.mirror import generate, mirror_path
from service import catalog
from service.fetch.http import Limits, download
from service.settings import Settings


def assemble(root: Path, settings: Settings, size: str, given: dict[str, str | None]) -> Path:
    """A directory laid out like upstream holding every dataset's file; returns ``root``."""
    missing = [name for name, source in given.items() if not source]
    if missing:
        generate(root, size=size, timezone_release=settings.timezone_release)
    for name, source in given.items():
        if source:
            _place(root / mirror_path(catalog.get(name).url(settings)), source, settings)
    return root


def _place(target: Path, source: str, settings: Settings) -> None:
    """Copy a local file, or download a URL, to where the mirror serves it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if urlsplit(source).scheme in ("http", "https"):
        limits = Limits(settings.connect_timeout, settings.read_timeout,
                        settings.max_download_bytes)
        got = download(source, target, limits=limits)
        assert got.part is not None  # nothing was sent to compare with: never 304
        got.part.replace(target)
    elif Path(source).resolve() != target.resolve():
        shutil.copyfile(source, target)


def local_file(root: Path, dataset: str, settings: Settings) -> Path:
    return root / mirror_path(catalog.get(dataset).url(settings))
