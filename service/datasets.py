"""``python -m service.datasets``: see :mod:`service.cli.datasets`."""
import sys

from service.cli import datasets, run

if __name__ == "__main__":
    sys.exit(run(datasets.main))
