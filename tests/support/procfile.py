"""The Procfile's roles and their commands, as the compose file and ``geoload`` must run them."""

from __future__ import annotations

from tests.conftest import ROOT

PROCFILE = ROOT / "Procfile"


def procfile() -> dict[str, str]:
    """Each role's command line, as written (``${X:-default}`` left for the shell)."""
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        name, colon, command = line.partition(":")
        if colon and not line.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries
