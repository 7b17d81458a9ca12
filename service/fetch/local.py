"""A user's own file on a local path (``enqueue --source /data/x.gpkg``), read in place.

No copy is made: every worker reads the file at the same path, so the path must be
readable by every worker (a shared mount). A worker that can't read it fails the load
saying so. The file's sha256 is pinned by the fetch, as an upstream download's is, and
kept beside the cache keyed by size and mtime so that each chunk does not hash it again;
a file changed mid-run fails the load rather than mixing two versions.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from service.errors import BadSource
from service.fetch.http import Validators
from service.identity import worker_id

_HINT = ("a --source path must be readable at that same path by every worker (a shared "
         "mount); or serve the file over HTTP(S) and pass its URL")


def is_local(source: str) -> bool:
    """A path, or a ``file://`` URL, rather than an http(s) URL."""
    return urlsplit(source).scheme in ("", "file")


def local_path(source: str) -> Path:
    return Path(urlsplit(source).path if source.startswith("file://") else source)


def validators(source: str, cache_dir: Path, pinned: str | None) -> Validators:
    """Size and sha256 of the file, which must be readable here and, once a run pinned it,
    unchanged."""
    path = local_path(source)
    try:
        stat = path.stat()
        with path.open("rb"):
            pass
    except OSError as exc:
        raise BadSource(f"worker {worker_id()} can't read {path}: {exc.strerror or exc}",
                        file=str(path), hint=_HINT) from exc
    sha256 = _sha256(path, stat, cache_dir)
    if pinned and sha256 != pinned:
        raise BadSource(f"{path} changed since this run started loading it (sha256 "
                        f"{sha256[:12]}… not {pinned[:12]}…)", file=str(path),
                        hint="don't change a --source file while it loads; enqueue it again")
    return Validators(str(path), None, None, stat.st_size, sha256)


def _sha256(path: Path, stat: os.stat_result, cache_dir: Path) -> str:
    memo = cache_dir / "local" / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
        if {k: known.get(k) for k in key} == key:
            return str(known["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f"{memo.name}.{os.getpid()}")
        tmp.write_text(json.dumps({**key, "sha256": digest.hexdigest()}), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:
        pass  # hashing again next time is only slower
    return digest.hexdigest()
