"""The README stays a user's page, and every link between the docs resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a user reads before loading anything; detail belongs in docs/.
README_MAX_BYTES = 15_000
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_short_enough_to_read():
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size:,} bytes; move detail to docs/"


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [f"{page.relative_to(ROOT)} → {target}" for page in pages
              for target in LINK.findall(page.read_text(encoding="utf-8"))
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, broken


def test_the_readme_gives_the_two_commands_that_do_everything():
    """On a fresh machine, one command runs the main job end to end and one the tests;
    CI runs the second, so the README must name both (a rewrite once dropped them)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(\.ci/\w+)\s+#", readme, flags=re.MULTILINE)
    assert commands == [".ci/demo", ".ci/run"], commands
    demo, run = ((ROOT / c).read_text(encoding="utf-8") for c in commands)
    assert "python -m service.enqueue gadm timezone --wait" in demo
    assert "pytest" in run
