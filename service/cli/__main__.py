"""``python -m service.cli``: the ``geoload`` command (:mod:`service.cli.main`)."""
import sys

from service.cli.main import entry

if __name__ == "__main__":
    sys.exit(entry())
