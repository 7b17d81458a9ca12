"""Who this process is, as shown in the ledger, heartbeats and pg_stat_activity."""

from __future__ import annotations

import os


def worker_id() -> str:
    """``host:pid``: unique among live processes, and what an operator can ``kill``."""
    return f"{os.uname().nodename}:{os.getpid()}"
