"""Which release of a dataset to load, asked of upstream once a day.

timezone-boundary-builder publishes a new tag (``2026c``) a few times a year. Unless
``GEOLOAD_TIMEZONE_RELEASE`` pins one, the producer asks GitHub's releases API for the
newest tag and keeps the answer a day in its cache (``<cache>/releases.json``), so that
enqueues and the scheduled refresh ask at most once a day. Without network access it
uses the last answer it kept, else the setting's default, and warns.

>>> release_for(catalog.get("timezone"), settings)
'2026c'
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from service.catalog import Dataset
from service.settings import SETTINGS, Settings

log = logging.getLogger(__name__)
#: Seconds a discovered release is trusted before asking again.
MAX_AGE_S = 86_400
#: Where each release setting's tags are published: setting → GitHub ``owner/repo``.
REPOSITORIES = {"timezone_release": "evansiroky/timezone-boundary-builder"}


def release_for(dataset: Dataset, settings: Settings) -> str | None:
    """The release to load: pinned by its setting, else discovered (cached a day), else
    the last known or the default, with a warning. None for a dataset without releases."""
    field = dataset.source.release_setting
    if field is None:
        return None
    setting = next(s for s in SETTINGS if s.field == field)
    if settings.extra.get(setting.env):
        return str(getattr(settings, field))
    repo = REPOSITORIES[field]
    cache = Path(settings.cache_dir) / "releases.json"
    known = _read(cache)
    entry = known.get(repo) or {}
    if entry.get("tag") and time.time() - float(entry.get("checked_at", 0)) < MAX_AGE_S:
        return str(entry["tag"])
    try:
        tag = latest_tag(repo, settings)
    except Exception as exc:  # noqa: BLE001 - any failure to ask falls back, loudly
        fallback = str(entry.get("tag") or getattr(settings, field))
        log.warning("%s: can't ask %s for its newest release (%s); loading %s. Set %s to "
                    "pin a release.", dataset.name, repo, exc, fallback, setting.env)
        return fallback
    _write(cache, {**known, repo: {"tag": tag, "checked_at": time.time()}})
    return tag


def latest_tag(repo: str, settings: Settings) -> str:
    """``tag_name`` of the repository's latest release, from GitHub's releases API."""
    from service.fetch.http import new_session

    url = f"{settings.github_api.rstrip('/')}/repos/{repo}/releases/latest"
    response = new_session().get(url, headers={"Accept": "application/vnd.github+json"},
                                 timeout=(settings.connect_timeout, settings.read_timeout))
    response.raise_for_status()
    tag = response.json().get("tag_name")
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError(f"{url} answered without a tag_name")
    return tag.strip()


def _read(cache: Path) -> dict[str, Any]:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(cache: Path, data: dict[str, Any]) -> None:
    """Atomically; a cache that can't be written only means asking again next time."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError as exc:
        log.warning("can't keep the discovered release in %s: %s", cache, exc)
