"""The command-line faces: thin over the library, sharing exit codes and one-line errors.

``geoload`` (:mod:`~service.cli.main`, also ``python -m service.cli``) is the one command;
its subcommands reuse the modules below and their parsers:
``python -m service.enqueue`` (:mod:`~service.cli.enqueue`), ``service.status``
(:mod:`~service.cli.status`), ``service.datasets`` (:mod:`~service.cli.datasets`) and
``service.wait`` (:mod:`~service.cli.wait`); :mod:`~service.cli.progress` draws a run's
progress on a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.errors import ConfigError, GeoloadError, ServiceUnavailable, UnknownDataset

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


class Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fail(message: str, code: int) -> Exit:
    print(f"geoload: {message}", file=sys.stderr)
    return Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Expected failures print one line and exit non-zero; no traceback."""
    try:
        yield
    except UnknownDataset as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    except ServiceUnavailable as exc:
        raise fail(str(exc), EXIT_UNAVAILABLE) from exc
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    except GeoloadError as exc:
        raise fail(str(exc), EXIT_FAILED) from exc
    except KeyboardInterrupt as exc:
        raise fail("interrupted", EXIT_INTERRUPTED) from exc


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main`` and map expected errors to an exit code."""
    try:
        with friendly_errors():
            return main(argv)
    except Exit as exc:
        return exc.code


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A command's parser: the same for ``python -m service.X`` and ``geoload X``, whose
    ``epilog`` of examples keeps its line breaks."""
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

