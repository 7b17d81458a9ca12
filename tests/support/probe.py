"""Extract an archive in a child process and measure what it cost: bytes written, peak memory.

A limit is tested by the resource it protects. The child resets its peak RSS
(``/proc/self/clear_refs``) once the modules are imported, then extracts the way
``fetch`` does, and reports the bytes it passed to ``write()`` (``wchar`` of
``/proc/self/io``: the archive is only read) and how far its peak RSS rose.

    python -m tests.support.probe stream|extract ARCHIVE PATTERN WORKDIR MAX_BYTES MAX_RATIO
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the downloader hands the follower at a time (service.fetch.http.BLOCK).
FEED = 1 << 16


@dataclass(frozen=True)
class Cost:
    written: int
    peak_growth: int
    error: str | None


def measure(mode: str, archive: Path, pattern: str, work: Path, max_bytes: int,
            max_ratio: float) -> Cost:
    """Run one extraction (``stream``: follower then the usual path; ``extract``: the usual
    path alone) in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-m", "tests.support.probe", mode, str(archive),
                           pattern, str(work), str(max_bytes), str(max_ratio)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    return Cost(**json.loads(done.stdout.strip().splitlines()[-1]))


def _proc(name: str, key: str) -> int:
    for line in Path(f"/proc/self/{name}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _run(mode: str, archive: Path, pattern: str, work: Path, limits: object) -> None:
    from service.fetch.unzip import Unzipper, extract_member

    dest = work / "out"
    if mode == "stream":
        unzipper = Unzipper(pattern, work / "follow", limits)  # type: ignore[arg-type]
        with open(archive, "rb") as source, unzipper:
            while block := source.read(FEED):
                unzipper.feed(block)
        if unzipper.adopt(archive, dest) is not None:
            return
    extract_member(archive, pattern, dest, limits)  # type: ignore[arg-type]


def main(mode: str, archive: str, pattern: str, work: str, max_bytes: str,
         max_ratio: str) -> None:
    from service.fetch.unzip import ArchiveLimits, Unzipper  # noqa: F401 - imported before the peak is reset

    limits = ArchiveLimits(int(max_bytes), float(max_ratio))
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := RSS now
    start_rss, start_written = _proc("status", "VmRSS") * 1024, _proc("io", "wchar")
    error = None
    try:
        _run(mode, Path(archive), pattern, Path(work), limits)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        error = f"{type(exc).__name__}: {exc}"
    cost = {"written": _proc("io", "wchar") - start_written,
            "peak_growth": _proc("status", "VmHWM") * 1024 - start_rss, "error": error}
    print(json.dumps(cost))


if __name__ == "__main__":
    main(*sys.argv[1:])
