"""``python -m service.status``: see :mod:`service.cli.status`."""
import sys

from service.cli import run, status

if __name__ == "__main__":
    sys.exit(run(status.main))
