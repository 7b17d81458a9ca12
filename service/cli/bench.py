"""``geoload bench``: the benchmark, run from a geoload checkout.

The benchmark (``devtools/bench``) is not installed with the library, so the console
script can't import it: its ``sys.path`` holds neither the current directory nor the
checkout. This looks for a checkout instead, in the current directory and its parents,
then where the installed ``service`` package lives (an editable install is a checkout),
parses the arguments with the checkout's own options (so ``--help`` and usage errors
answer like every other command), and runs ``python -m devtools.bench`` in a child whose
``PYTHONPATH`` starts with that checkout, so the benchmark and the library it measures
come from the same tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import service
from service import cli

#: What marks a directory as a geoload checkout.
OPTIONS = Path("devtools", "bench", "options.py")


def find_checkout(start: Path | None = None) -> Path | None:
    """The checkout holding ``start`` (default: the current directory), else the one the
    installed ``service`` package was installed from; None when neither has devtools/."""
    here = (start or Path.cwd()).resolve()
    installed = Path(service.__file__).resolve().parents[1]
    for candidate in (here, *here.parents, installed):
        if (candidate / OPTIONS).is_file() and (candidate / "service").is_dir():
            return candidate
    return None


def build_parser(checkout: Path, prog: str, epilog: str) -> argparse.ArgumentParser:
    """The checkout's benchmark options, loaded from their file: the checkout need not be
    on ``sys.path``, and this process's ``devtools`` (if any) is left alone."""
    spec = importlib.util.spec_from_file_location("geoload_bench_options", checkout / OPTIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser: argparse.ArgumentParser = module.build_parser(prog=prog, epilog=epilog)
    return parser


def child_env(checkout: Path) -> dict[str, str]:
    paths = [str(checkout), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run(argv: list[str], prog: str, epilog: str) -> int:
    checkout = find_checkout()
    if checkout is None:
        raise cli.fail(
            f"the benchmark runs from a geoload checkout, and none was found in {Path.cwd()} "
            f"or its parents, nor where geoload is installed ({Path(service.__file__).parent}): "
            "clone the repository, cd into it and run geoload bench again", cli.EXIT_USAGE)
    build_parser(checkout, prog, epilog).parse_args(argv)  # --help, usage errors: here
    return subprocess.call([sys.executable, "-m", "devtools.bench", *argv],
                           env=child_env(checkout))
