"""``geoload worker``, ``scheduler`` and ``dashboard``: the Procfile's commands, exec'd.

One command line per role, the same one the Procfile (and compose) runs, so that
``geoload worker`` on a host is what honcho would start there; tests/test_procfile.py
holds the two equal. The process is replaced (``exec``), so signals reach Dramatiq
and periodiq directly, as under honcho.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

from service.settings import Settings

ROLES = ("worker", "scheduler", "dashboard")


@dataclass(frozen=True)
class Launch:
    """A role's command line, and the variables it adds to the environment."""

    argv: list[str]
    env: dict[str, str]


def command(role: str, settings: Settings, *, processes: int | None = None,
            threads: int | None = None) -> Launch:
    """The Procfile's command for ``role``, with this process's settings filled in."""
    if role == "worker":
        threads = threads or settings.worker_threads
        return Launch(["dramatiq", "actors", "--processes",
                       str(processes or settings.worker_processes), "--threads", str(threads)],
                      {"dramatiq_queue_prefetch": str(threads)})
    if role == "scheduler":
        return Launch(["periodiq", "actors"], {})
    if role == "dashboard":
        return Launch(["python", "-m", "service.dashboard"], {})
    raise ValueError(f"no role {role!r}; one of {', '.join(ROLES)}")


def resolve(program: str) -> str:
    """The program beside this interpreter (the same virtualenv) if it is there."""
    if program == "python":
        return sys.executable
    beside = os.path.join(os.path.dirname(sys.executable), program)
    return beside if os.access(beside, os.X_OK) else (shutil.which(program) or program)


def exec_role(launch: Launch) -> None:
    """Replace this process with the role's command (never returns)."""
    env = {**os.environ, **launch.env}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(resolve(launch.argv[0]), [launch.argv[0], *launch.argv[1:]], env)
